"""Every command-line failure goes through one handler (``minivit/cli/main.py``, ``minivit/cli/errors.py``):
one ``error:`` line on stderr naming the file or value and what was expected, exit code 2 for bad
input and 1 for other failures, no traceback (``--debug`` shows it).

CASES is the table: (name, how to set it up, expected exit code, fragment of the error line).
A full disk and a read-only folder are simulated by patching the writes.
"""
from __future__ import annotations

import builtins
import errno
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minivit.cli import main as cli
from minivit.storage.checkpoint import save_checkpoint
from minivit.model import ViT, ViTConfig

STANDIN = Path("/work/shared/data/cifar10-standin")
CIFAR_BIN = STANDIN / "cifar-10-batches-bin"
needs_data = pytest.mark.skipif(not CIFAR_BIN.is_dir() and not os.environ.get("MINIVIT_DATA"),
                                reason="needs CIFAR-10 (MINIVIT_DATA)")


def data_dir():
    return os.environ.get("MINIVIT_DATA") or str(STANDIN)


@pytest.fixture(scope="module")
def good_ckpt(tmp_path_factory):
    """A small, valid minivit checkpoint (untrained tiny ViT), and its arrays."""
    folder = tmp_path_factory.mktemp("ckpt")
    model = ViT(ViTConfig.preset("tiny"), seed=0)
    path = save_checkpoint(folder / "good.npz", model, meta=dict(train_config={"dataset": "cifar10"}))
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return path, arrays


def write_npz(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return str(path)


def with_param(arrays, convert):
    out = dict(arrays)
    k = next(k for k in arrays if k.startswith("param/"))
    out[k] = convert(arrays[k])
    return out


def huge_header_npz(path, arrays):
    """A valid .npz whose first parameter's .npy header declares 2**40 float32 (4 TiB) in a tiny member."""
    with zipfile.ZipFile(path, "w") as zf:
        for k, a in arrays.items():
            buf = io.BytesIO()
            if k.startswith("param/") and not zf.namelist():
                np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False,
                                                           "shape": (2 ** 40,)})
                buf.write(b"\0" * 64)
            else:
                np.lib.format.write_array(buf, a, allow_pickle=False)
            zf.writestr(k + ".npy", buf.getvalue())
    return str(path)


def deny_writes_under(monkeypatch, folder, err):
    """Every open for writing of a file under ``folder`` raises ``err`` (a read-only or full folder)."""
    folder = os.path.abspath(folder)
    real_open, real_os_open = builtins.open, os.open

    def inside(file):
        return isinstance(file, (str, os.PathLike)) and os.path.abspath(os.fspath(file)).startswith(folder + os.sep)

    def fake_open(file, mode="r", *a, **kw):
        if inside(file) and any(c in mode for c in "wax+"):
            raise err(file)
        return real_open(file, mode, *a, **kw)

    def fake_os_open(file, flags, *a, **kw):
        if inside(file) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise err(file)
        return real_os_open(file, flags, *a, **kw)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)


def read_only(file):
    return PermissionError(errno.EACCES, "Permission denied", os.fspath(file))


# ------------------------------------------------------------------------------ the cases
# Each setup(tmp, ckpt, monkeypatch) returns the argv. ckpt = (path of a good checkpoint, its arrays).
def _int_params(t, c, m):
    return ["eval", write_npz(t / "int.npz", with_param(c[1], lambda a: a.astype(np.int64)))]


def _complex_params(t, c, m):
    return ["eval", write_npz(t / "complex.npz", with_param(c[1], lambda a: a.astype(np.complex64)))]


def _string_params(t, c, m):
    return ["eval", write_npz(t / "str.npz", with_param(c[1], lambda a: a.astype(str)))]


def _meta_not_object(t, c, m):
    return ["eval", write_npz(t / "meta.npz", {**c[1], "meta_json": np.array(json.dumps([1, 2]))})]


def _huge_header_eval(t, c, m):
    return ["eval", huge_header_npz(t / "huge.npz", c[1])]


def _huge_header_resume(t, c, m):
    (t / "run").mkdir()
    huge_header_npz(t / "run" / "last.npz", c[1])
    return ["train", "--preset", "smoke", "--resume", "--out", str(t / "run"), "--data-dir", data_dir()]


def _random_bytes(t, c, m):
    (t / "random.npz").write_bytes(np.random.default_rng(0).bytes(4096))
    return ["eval", str(t / "random.npz")]


def _resume_missing_key(t, c, m):
    (t / "run").mkdir()
    meta = json.loads(str(c[1]["meta_json"]))
    meta.update(train_config={"dataset": "cifar10"}, step_in_epoch=0, global_step=0, partial={}, history=[],
                best_acc=-1.0, elapsed=0.0)                     # every key a resume reads, but "epoch"
    write_npz(t / "run" / "last.npz", {**c[1], "meta_json": np.array(json.dumps(meta))})
    return ["train", "--preset", "smoke", "--resume", "--out", str(t / "run"), "--data-dir", data_dir()]


def _full_disk(t, c, m):
    def no_space(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")
    m.setattr(np, "savez", no_space)
    return ["train", "--preset", "smoke", "--subset", "128", "--epochs", "1", "--out", str(t / "run"),
            "--data-dir", data_dir()]


def _full_disk_default_out(t, c, m):
    m.chdir(t)                                   # the default --out, runs/smoke-cifar10, under the test's folder
    _full_disk(t, c, m)
    return ["train", "--preset", "smoke", "--subset", "128", "--epochs", "1", "--data-dir", data_dir()]


def _read_only_out(t, c, m):
    (t / "ro").mkdir()
    deny_writes_under(m, t / "ro", read_only)
    return ["train", "--preset", "smoke", "--subset", "128", "--epochs", "1", "--out", str(t / "ro"),
            "--data-dir", data_dir()]


def _read_only_eval_out(t, c, m):
    (t / "ro").mkdir()
    deny_writes_under(m, t / "ro", read_only)
    return ["eval", str(c[0]), "--out", str(t / "ro"), "--data-dir", data_dir()]


def _out_is_file(t, c, m):
    (t / "afile").write_text("x")
    return ["train", "--preset", "smoke", "--out", str(t / "afile")]


def _data_dir_is_file(t, c, m):
    (t / "afile").write_text("x")
    return ["eval", str(c[0]), "--data-dir", str(t / "afile")]


def _class_names_not_utf8(t, c, m):
    folder = t / "data" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for f in CIFAR_BIN.iterdir():
        (folder / f.name).symlink_to(f)
    (folder / "batches.meta.txt").unlink()
    (folder / "batches.meta.txt").write_bytes(b"airplane\n\xff\xfeautomobile\n")
    return ["eval", str(c[0]), "--data-dir", str(t / "data")]


def _best_missing_last_exists(cmd):
    def setup(t, c, m):
        (t / "run").mkdir()
        (t / "run" / "last.npz").write_bytes(Path(c[0]).read_bytes())
        return [cmd, str(t / "run" / "best.npz")] + (["--out", str(t / "insp")] if cmd == "inspect" else [])
    return setup


def _missing_checkpoint(t, c, m):
    return ["eval", str(t / "nope.npz")]


def _bad_int(t, c, m):
    return ["train", "--epochs", "x"]


def _unknown_preset(t, c, m):
    return ["bench", "--preset", "nope"]


CASES = [
    # name, setup, exit code, fragment of the error line ({tmp} is the test's folder)
    ("int parameters", _int_params, 2, "int.npz: parameter"),
    ("int parameters dtype", _int_params, 2, "has dtype int64; expected floating point"),
    ("complex parameters", _complex_params, 2, "has dtype complex64; expected floating point"),
    ("string parameters", _string_params, 2, "str.npz: parameter"),
    ("meta_json not an object", _meta_not_object, 2, "meta.npz: meta_json holds a JSON list; expected a JSON object"),
    ("terabyte header (eval)", _huge_header_eval, 2, "huge.npz: member param/"),
    ("terabyte header (eval) size", _huge_header_eval, 2, "(4,398,046,511,104 bytes) but holds only"),
    ("terabyte header (resume)", _huge_header_resume, 2, "last.npz: member param/"),
    ("random-bytes .npz", _random_bytes, 2, "random.npz is not an .npz archive"),
    ("--resume, missing key", _resume_missing_key, 2, "last.npz: cannot resume from it: meta_json lacks ['epoch']"),
    ("full disk", _full_disk, 1, "no space left on device"),
    ("full disk names the file", _full_disk, 1, "cannot write {tmp}/run/best.npz: no space left on device"),
    ("full disk, default --out", _full_disk_default_out, 1, "cannot write runs/smoke-cifar10/best.npz: no space left"),
    ("read-only --out (train)", _read_only_out, 2, "cannot write {tmp}/ro/"),
    ("read-only --out (train) says why", _read_only_out, 2, "permission denied"),
    ("read-only --out (eval)", _read_only_eval_out, 2, "cannot write {tmp}/ro/confusion.png: permission denied"),
    ("--out is a file", _out_is_file, 2, "argument --out: {tmp}/afile is a file; expected a folder"),
    ("--data-dir is a file", _data_dir_is_file, 2, "argument --data-dir: {tmp}/afile is a file; expected a folder"),
    ("bench --batch-size 0", lambda t, c, m: ["bench", "--batch-size", "0"], 2,
     "argument --batch-size: expected a positive integer, got 0"),
    ("bench --steps 0", lambda t, c, m: ["bench", "--steps", "0"], 2,
     "argument --steps: expected a positive integer, got 0"),
    ("class names not UTF-8", _class_names_not_utf8, 2, "cifar-10-batches-bin/batches.meta.txt: not UTF-8 text"),
    ("eval best.npz missing, last.npz there", _best_missing_last_exists("eval"), 2,
     "best.npz does not exist; best.npz is written when an epoch ends"),
    ("eval best.npz missing names last.npz", _best_missing_last_exists("eval"), 2, "{tmp}/run/last.npz exists"),
    ("inspect best.npz missing, last.npz there", _best_missing_last_exists("inspect"), 2,
     "{tmp}/run/last.npz exists: use that one"),
    ("missing checkpoint", _missing_checkpoint, 2, "checkpoint {tmp}/nope.npz does not exist"),
    ("malformed option", _bad_int, 2, "argument --epochs: expected a positive integer, got x"),
    ("unknown preset", _unknown_preset, 2, "argument --preset: invalid choice: 'nope'"),
]
NEEDS_DATA = {_huge_header_resume, _resume_missing_key, _full_disk, _full_disk_default_out, _read_only_out, _read_only_eval_out,
              _class_names_not_utf8}


@pytest.mark.parametrize("name,setup,code,fragment", CASES, ids=[c[0] for c in CASES])
def test_error_table(name, setup, code, fragment, tmp_path, good_ckpt, monkeypatch, capsys):
    if setup in NEEDS_DATA and not CIFAR_BIN.is_dir() and not os.environ.get("MINIVIT_DATA"):
        pytest.skip("needs CIFAR-10 (MINIVIT_DATA)")
    monkeypatch.setenv("MINIVIT_DEVICE", "cpu")
    argv = setup(tmp_path, good_ckpt, monkeypatch)
    rc = cli.main(argv)
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == code, err
    assert len(error_lines) == 1, err
    assert "Traceback" not in err, err
    assert fragment.format(tmp=tmp_path) in error_lines[0], err


def test_random_bytes_message_does_not_suggest_pickles(tmp_path, good_ckpt, capsys):
    assert cli.main(_random_bytes(tmp_path, good_ckpt, None)) == 2
    assert "pickle" not in capsys.readouterr().err


def test_string_parameters_are_refused_not_evaluated(tmp_path, good_ckpt):
    from minivit.storage.checkpoint import CheckpointError, load_checkpoint

    with pytest.raises(CheckpointError, match="dtype <U"):
        load_checkpoint(_string_params(tmp_path, good_ckpt, None)[1])


def test_huge_header_is_refused_before_allocating(tmp_path, good_ckpt, monkeypatch):
    """numpy is never asked to read the 4 TiB member."""
    from minivit.storage.checkpoint import CheckpointError, load_checkpoint

    path = _huge_header_eval(tmp_path, good_ckpt, monkeypatch)[1]
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: pytest.fail("read_array was called"))
    with pytest.raises(CheckpointError, match="declares an array of shape"):
        load_checkpoint(path)


def test_info_reports_a_missing_gpu_instead_of_failing(monkeypatch, capsys):
    from minivit import backend

    monkeypatch.setenv("MINIVIT_DEVICE", "gpu")
    monkeypatch.setattr(backend, "gpu_available", lambda: False)
    assert cli.main(["info"]) == 0
    out = capsys.readouterr()
    assert "none usable" in out.out and "device 'gpu' was requested" in out.out, out
    assert "error" not in out.err


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert cli.main(["eval", str(tmp_path / "nope.npz"), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error:")


def test_unexpected_exceptions_exit_1_without_traceback(monkeypatch, capsys):
    def boom(args):
        raise AttributeError("'NoneType' object has no attribute 'x'")
    monkeypatch.setattr(cli, "cmd_info", boom)
    assert cli.main(["info"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected AttributeError") and "--debug" in err and "Traceback" not in err


def test_every_subcommand_takes_debug():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        assert any("--debug" in a.option_strings for a in p._actions), name


def test_offline_message_shows_the_option_on_the_cli(tmp_path, monkeypatch, capsys):
    from minivit.data import cifar as data

    def offline(*a, **k):
        raise data.DataNotFoundError("network unreachable")
    monkeypatch.setattr(data, "download_file", offline)
    monkeypatch.setenv("MINIVIT_DEVICE", "cpu")
    ckpt = save_checkpoint(tmp_path / "c.npz", ViT(ViTConfig.preset("tiny")), meta={})
    assert cli.main(["eval", str(ckpt), "--data-dir", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "--data-dir DIR" in err and "data_dir=" not in err
    with pytest.raises(data.DataNotFoundError, match="data_dir=DIR"):   # the Python form in Python
        data.load_cifar("cifar10", tmp_path / "empty")


def test_options_that_are_fine_parse():
    """The parser builds (no subcommand twice) and the number types accept good values."""
    args = cli.build_parser().parse_args(["train", "--lr", "0.01", "--epochs", "2", "--out", "runs/x"])
    assert args.lr == 0.01 and args.epochs == 2
    assert cli.build_parser().parse_args(["bench", "--warmup", "0"]).warmup == 0


def test_exit_codes_by_kind():
    from minivit.cli import errors

    assert errors.exit_code(ValueError("x")) == 2 and errors.exit_code(KeyError("k")) == 2
    assert errors.exit_code(FileNotFoundError(2, "No such file", "f")) == 2
    assert errors.exit_code(PermissionError(13, "Permission denied", "f")) == 2
    assert errors.exit_code(OSError(28, "No space left on device")) == 1
    assert errors.exit_code(RuntimeError("diverged")) == 1 and errors.exit_code(AttributeError("bug")) == 1
    e = RuntimeError("your exercises are not complete")
    e.exit_code = 2
    assert errors.exit_code(e) == 2
