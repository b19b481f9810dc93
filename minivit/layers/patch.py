"""Patchify: cut an image into non-overlapping P x P patches and flatten each (paper eq. 1).

An image x of shape (H, W, C) becomes N = HW / P^2 patch vectors of length P*P*C.
Each patch vector is flattened in (row, col, channel) order, so a conv-style kernel of
shape (P, P, C, D) reshapes directly into the embedding matrix E of shape (P*P*C, D).

Patches are ordered row-major over the patch grid: patch n sits at grid row n // (W/P),
grid column n % (W/P).
"""
from minivit.backend import get_array_module


def check_image_batch(x, patch_size=None, channels=None):
    """Raise a clear error unless ``x`` is a float (B, H, W, C) batch that ``patch_size`` tiles."""
    if not (hasattr(x, "ndim") and hasattr(x, "dtype") and hasattr(x, "shape")):
        raise TypeError(f"expected an array of images (B, H, W, C), got a {type(x).__name__}; pass an array, "
                        "e.g. np.asarray(images, dtype=np.float32)")
    xp = get_array_module(x)
    if x.ndim != 4:
        raise ValueError(
            f"expected a batch of images with shape (B, H, W, C) (channels last), got rank {x.ndim} "
            f"with shape {tuple(x.shape)}"
        )
    if not xp.issubdtype(x.dtype, xp.floating):
        raise TypeError(
            f"expected floating-point images (float32 or float64), got dtype {x.dtype}; "
            "convert uint8 images with minivit.data.augment.normalize (or x.astype('float32') / 255)"
        )
    B, H, W, C = x.shape
    if channels is not None and C != channels:
        raise ValueError(f"expected {channels} channels in the last axis (B, H, W, C), got {C} (shape {tuple(x.shape)})")
    if patch_size is not None and (H % patch_size or W % patch_size):
        raise ValueError(
            f"image size {H}x{W} is not divisible by the patch size {patch_size}; "
            "choose a patch size that divides both height and width"
        )


def patchify_forward(x, patch_size):
    """Cut images into flattened patches (the x_p^1 ... x_p^N of paper eq. 1).

    x:       (B, H, W, C) images, channels last; P = patch_size divides H and W
    returns: out (B, N, P*P*C) with N = (H/P) * (W/P), and a cache for the backward pass.
             Patches are ordered row-major over the patch grid (patch n is grid row n // (W/P),
             grid column n % (W/P)); each patch vector is flattened in (row, column, channel)
             order, so out[b, 0] is x[b, :P, :P, :].ravel(). out may be a copy.

    Keeps the input's dtype (float32 in, float32 out) and does not modify its inputs.

    Derivation:
        (B, H, W, C) -> reshape (B, H/P, P, W/P, P, C) -> transpose the two grid axes together
        (B, H/P, W/P, P, P, C) -> reshape (B, N, P*P*C). A single reshape is not enough: it
        would mix pixels of neighbouring patches.
    """
    check_image_batch(x, patch_size)
    B, H, W, C = x.shape
    P = patch_size
    gh, gw = H // P, W // P
    # (B, gh, P, gw, P, C) -> (B, gh, gw, P, P, C): bring the two grid axes together.
    out = x.reshape(B, gh, P, gw, P, C).transpose(0, 1, 3, 2, 4, 5).reshape(B, gh * gw, P * P * C)
    return out, (x.shape, P)


def patchify_backward(dout, cache):
    """Gradient of patchify.

    dout:    (B, N, P*P*C), the gradient of the loss with respect to patchify's output
    returns: dx (B, H, W, C), the gradient with respect to the images x

    Keeps the dtype (float32 in, float32 out). Does not modify dout: the caller's array may be used
    elsewhere. Everything it needs comes from the cache (it may run after other forward calls).

    Derivation:
        patchify only moves numbers around, so its backward moves them back: dx = unpatchify(dout).
    """
    x_shape, P = cache
    return unpatchify(dout, x_shape[1], x_shape[2], P)


def unpatchify(patches, height, width, patch_size):
    """Inverse of patchify: (B, N, P*P*C) -> (B, H, W, C)."""
    B, N, L = patches.shape
    P = patch_size
    gh, gw = height // P, width // P
    if gh * gw != N or L % (P * P):
        raise ValueError(f"cannot unpatchify {tuple(patches.shape)} into {height}x{width} images with patch size {P}")
    C = L // (P * P)
    return patches.reshape(B, gh, gw, P, P, C).transpose(0, 1, 3, 2, 4, 5).reshape(B, height, width, C)
