"""The human reader's verdicts (written after reading report.md against /work/main), merged with
the automated columns of results.json into verdicts.json, plus summary rates."""
import json

HP = "hint-pointer"   # a `stuck? python -m minivit hint X` pointing at a function whose code is correct
V = {}
def v(case, leak, misleading, named, offending="", kind=None, note=""):
    V[case] = dict(leak=leak, misleading=misleading, misleading_kind=kind if misleading else None,
                   offending=offending, named=named, note=note)

# ---------------- attention
v("attention__dot_T_on_4d", False, False, "partly",
  note="shows the ValueError and the offending line `np.matmul(q, k.T)`, but never says .T reverses all 4 axes")
v("attention__dv_scaled", True, True, "yes",
  "Next step: compute the backward from the softmax output s in the cache (never exp of the raw scores).  /  float32 check: stuck? `python -m minivit hint attention_forward`",
  "advice+" + HP,
  "leak: 'the reference is 1*[A^T dout]' is the complete dv formula; large-scores advice premise is false (code uses A from the cache)")
v("attention__scale_sqrt_T", False, False, "yes",
  note="says d = q.shape[-1]; that is the contract's (..., T, d), not a derived formula")
v("attention__softmax_bwd_inplace_dout", False, False, "no", note="NOT CAUGHT: dout modified in place, full marks")
v("attention__softmax_bwd_missing_s_on_second_term", True, True, "partly",
  "Next step: compute the backward from the softmax output s in the cache (never exp of the raw scores).  /  float32 + large checks: stuck? `python -m minivit hint softmax_forward`",
  "advice+" + HP,
  "leak: the caused_by note prints 'dS = A * (dA - sum(dA * A, axis=-1, keepdims=True))' = the whole softmax backward; "
  "own checks only say 'dx differs'; the mistake itself (s missing on the second term) is never named")
v("attention__softmax_bwd_no_keepdims", False, True, "yes",
  "float32 + large checks (errors in softmax_backward): stuck? `python -m minivit hint softmax_forward`", HP)
v("attention__softmax_global_max", True, False, "yes",
  note="leak: 'Subtract x.max(axis=axis, keepdims=True)' is the exact missing line")
v("attention__softmax_no_max_shift", True, False, "yes",
  note="leak (of the loss topic): 'for a log-softmax use s - max - log(sum(exp(s - max)))' is cross_entropy_forward's stable log-softmax")
v("attention__softmax_sum_hardcoded_last_axis", False, True, "no",
  "Next step: subtract each row's maximum before exp (keepdims=True).", "advice",
  "the code already subtracts the max along `axis`; the wrong sum axis (axis=-1 hard-coded) is never named")
v("attention__valid_einsum", False, False, "n/a")
v("attention__valid_logsumexp_softmax", False, False, "n/a")
# ---------------- block
v("block__branch1_mask_not_undone", False, True, "partly",
  "Apply F.dropout_forward and F.drop_path_forward (...) to each branch's output, MSA's and the MLP's, before adding it to the residual",
  "advice", "forward is right; generic recipe, does not say which branch/mask is missing (only 'train=False it is right')")
v("block__dropout_in_eval", False, False, "partly",
  note="only the AttributeError on rng=None (line in _drop) — a learner can infer train was ignored but it is not said")
v("block__dropout_no_rescale", False, False, "partly",
  note="'with train=False it is right' + generic recipe; the missing 1/(1-p) is not named")
v("block__droppath_per_element", False, False, "partly",
  note="same generic text as dropout_no_rescale; per-element vs per-sample mask not named")
v("block__dx_adds_dout_not_dz1", False, False, "yes",
  note="'the term through the MLP, then the first residual is missing' — precise")
v("block__ln1_grads_swapped", False, False, "yes", note="'stored under another parameter's key' + return orders (contract)")
v("block__ln2_on_x", False, True, "yes",
  "float32 check 'encoder_block_forward in float32: the output differs' -> stuck? `python -m minivit hint encoder_block_backward`", HP,
  "prints z' = x + MSA(LN(x)) (eq. 2, in the docstring: not a leak)")
v("block__valid_droppath_first", False, False, "n/a")
# ---------------- layernorm
v("layernorm__dgamma_batch_only", False, False, "yes",
  note="generic example 'db = dy.reshape(-1, D_out).sum(axis=0)' is the pattern, not dgamma itself")
v("layernorm__dx_forgot_gamma", False, False, "yes",
  note="'g = dy * gamma' is the named missing factor, not the full dx formula (auto leak flag is on this sub-expression only)")
v("layernorm__dx_times_std", False, False, "no", note="only 'dx differs' + generic next step; the zero-variance numbers hint at a 1e6 scale")
v("layernorm__dx_var_term_uses_dy", False, False, "no", note="generic only")
v("layernorm__dy_modified_in_place", False, False, "no", note="NOT CAUGHT: dy *= gamma in place, full marks")
v("layernorm__eps_added_to_std", False, True, "yes",
  "float32 check 'layernorm_forward in float32: the output differs' -> stuck? `python -m minivit hint layernorm_backward`", HP,
  "xhat = (x - mu) / sqrt(var + eps) is the docstring's own formula")
v("layernorm__mean_no_keepdims", False, False, "yes")
v("layernorm__valid_float64_longform", False, False, "n/a")
v("layernorm__var_unbiased", False, True, "yes",
  "float32 and zero-variance checks about layernorm_forward -> stuck? `python -m minivit hint layernorm_backward`", HP)
# ---------------- loss
v("loss__bwd_ignores_dloss", True, False, "yes",
  note="leak: 'dlogits = dloss * (softmax(s) - t) / B' is the complete backward")
v("loss__log_of_softmax", True, False, "yes",
  note="leak: 'log_p = (s - max) - log(sum(exp(s - max)))' is the forward's stable log-softmax")
v("loss__lse_wrong_axis", True, True, "no",
  "cross_entropy_backward check: 'Next step: ... check that ... dlogits * B / dloss = softmax(s) - t' (backward is correct; its cache is wrong)  /  'print your target t for one row' (target is right)",
  "advice+" + HP,
  "leak: 'dlogits * B / dloss = softmax(s) - t' is the whole backward; the wrong-axis log-sum-exp is never named")
v("loss__mean_over_classes_too", False, True, "yes",
  "float32 check 'cross_entropy_forward in float32' -> stuck? `python -m minivit hint cross_entropy_backward`", HP)
v("loss__no_max_shift", True, False, "yes",
  note="leak: 'for a log-softmax use s - max - log(sum(exp(s - max)))' is the forward's answer")
v("loss__smoothing_not_divided_by_K", True, True, "partly",
  "float32 check on the forward -> stuck? `python -m minivit hint cross_entropy_backward`", HP,
  "forward check generic ('t should sum to 1' is a good nudge); the backward check names '-eps/K/B scaled by 6' (=K); "
  "leak: 'dlogits * B / dloss = softmax(s) - t'")
v("loss__soft_targets_smoothed_in_place", False, False, "yes", note="'cross_entropy_forward changed its input labels'")
v("loss__valid_logaddexp", False, False, "n/a")
# ---------------- mlp
v("mlp__approximate_not_passed", False, True, "yes",
  "The chain breaks at the second linear layer (dw2 wrong): da, dw2, db2 = linear_backward(dout, fc2 cache) comes first.",
  "advice", "mlp_backward is correct (dw2 differs only because the forward's activation differs)")
v("mlp__cache_keeps_preactivation", False, True, "partly",
  "The chain breaks at the second linear layer (dw2 wrong): da, dw2, db2 = linear_backward(dout, fc2 cache) comes first.",
  "advice", "dw2 is located correctly, but the cause (cache holds x w1 + b1 instead of GELU's output) is not; 'comes first' premise false (it does)")
v("mlp__gelu_bwd_inplace_dout", False, False, "no", note="NOT CAUGHT: dout *= local in place, full marks")
v("mlp__gelu_bwd_sech2_as_one_minus_t", False, False, "no", note="generic only")
v("mlp__gelu_exact_bwd_pdf_unnormalised", True, False, "yes",
  note="leak: 'phi(x) = exp(-x^2 / 2) / sqrt(2 pi) ... d/dx [x Phi(x)] = Phi(x) + x phi(x)' is the complete exact-form backward")
v("mlp__gelu_sigmoid_approx", False, True, "yes",
  "gelu_backward finite-difference check: 'Next step: check dx on its own ... derive it again term by term'  /  float32 + |x|<=100 checks on gelu_forward -> stuck? `python -m minivit hint gelu_backward`",
  "advice+" + HP, "gelu_backward is correct for the tanh form; re-deriving it is wasted work")
v("mlp__gelu_tanh_square_not_cube", False, True, "yes",
  "float32 + |x|<=100 checks on gelu_forward -> stuck? `python -m minivit hint gelu_backward`; gelu_backward 'derive it again term by term'",
  "advice+" + HP)
v("mlp__gelu_tanh_via_exp_overflow", False, True, "yes",
  "gelu: |x| up to 100 ... gelu_forward ... NaN -> stuck? `python -m minivit hint gelu_backward`", HP,
  "the only failing check points to gelu_backward, whose own checks all pass")
v("mlp__valid_gelu_sigmoid_form", False, False, "n/a")
# ---------------- multihead
v("multihead__db_out_batch_only", True, False, "yes",
  note="leak: 'e.g. db = dy.reshape(-1, D_out).sum(axis=0)' is db_out's answer with renamed variables")
v("multihead__dmerged_w_out_not_transposed", False, True, "no",
  "dw_out and db_out are right; in dw_qkv the columns of dq, dk, dv are wrong: check merge_heads_backward, attention_backward and how dq, dk, dv go back to (B, T, 3D).",
  "advice", "blames merge_heads_backward / attention_backward (both correct); the bug is dmerged = dout @ w_out (no .T) before them")
v("multihead__dqkv_order_q_v_k", False, True, "partly",
  "check merge_heads_backward, attention_backward and how dq, dk, dv go back to (B, T, 3D).", "advice",
  "'columns of dk, dv are wrong' locates it; the true cause is third in a list of three, the first two are correct")
v("multihead__hardcoded_heads", False, True, "no",
  "The chain breaks at its first link, the output projection (dw_out): dmerged, dw_out, db_out = linear_backward(dout, out cache).",
  "advice", "mhsa_backward is correct; the forward's num_heads is ignored; forward message is generic")
v("multihead__merge_heads_wrong_transpose", True, True, "yes",
  "merge_heads_backward is not the gradient of merge_heads (merge_heads_backward is correct; merge_heads is wrong)", "advice+" + HP,
  "leak (of the backward exercises): 'split_heads_backward = merge_heads, merge_heads_backward = split_heads'")
v("multihead__return_order_swapped", False, True, "yes",
  "The chain breaks at its first link, the output projection (dw_out): dmerged, dw_out, db_out = linear_backward(dout, out cache).",
  "advice", "'returned in the wrong order' is right; the chain-break line contradicts it")
v("multihead__split_heads_strided", True, True, "yes",
  "split_heads_backward is not the gradient of split_heads ... stuck? `python -m minivit hint merge_heads_backward`", "advice+" + HP,
  "leak: 'split_heads_backward = merge_heads, merge_heads_backward = split_heads'; 'reshape to (B, T, h, d)' gives half the forward")
v("multihead__valid_stack_slices", False, False, "n/a")
# ---------------- optim
v("optim__bias_corr_t_minus_1", False, True, "partly",
  "With a zero gradient m_hat = v_hat = 0: eps in the denominator keeps 0 / 0 away: m_hat / (sqrt(v_hat) + eps).",
  "advice", "eps is already in the denominator; the NaN is 1/(1-b^0); 'compare m_hat, v_hat by hand' is a fair nudge")
v("optim__decay_scaled_by_adaptive", False, False, "partly",
  note="'m differs' at wd>0 (and with a zero gradient) points at what goes into m; coupled decay never named")
v("optim__eps_inside_sqrt", False, False, "yes")
v("optim__progress_from_step_zero", False, False, "yes", note="formula printed is the docstring's")
v("optim__v_not_bias_corrected", False, False, "yes",
  note="'(on m, on v, or both)'; the formulas printed are the docstring's (auto leak flag = contract text)")
v("optim__valid_folded_step", False, True, "n/a",
  "warmup_cosine(step=10, total_steps=10, base_lr=0.2, warmup_steps=10, min_lr=0.01) = 0.01, expected 0.2. The cosine progress must count from the end of the warmup",
  "advice", "FALSE POSITIVE: the docstring says 'total_steps == warmup_steps: progress 1 from there on, so min_lr' "
  "(0.01); minivit's reference returns base_lr (progress 0/max(1,0) = 0). Reference and contract disagree.")
v("optim__warmup_off_by_one", False, False, "yes", note="formula printed is the docstring's")
# ---------------- patch / tokens
v("patch__db_float64_accumulate", False, True, "yes",
  "stuck? `python -m minivit hint linear_forward` (the only failing check; linear_forward is correct)", HP,
  "'linear_backward returned db as float64' is right; the generic causes listed don't include sum(dtype=float64)")
v("patch__db_sums_batch_only", True, True, "yes",
  "float32 check on linear_backward -> stuck? `python -m minivit hint linear_forward`", HP,
  "leak: 'e.g. db = dy.reshape(-1, D_out).sum(axis=0)' is exactly the answer")
v("patch__dw_transposed", True, True, "yes",
  "float32 check on linear_backward -> stuck? `python -m minivit hint linear_forward`", HP, "leak: 'dw = x^T dy'")
v("patch__unpatchify_no_transpose", True, True, "yes",
  "float32 check on patchify_backward -> stuck? `python -m minivit hint patchify_forward`", HP,
  "leak: 'dout.reshape(B, H/P, W/P, P, P, C), .transpose(0, 1, 3, 2, 4, 5), .reshape(B, H, W, C)' is the whole backward")
v("tokens__dcls_mean_not_sum", False, True, "yes",
  "float32 check on cls_token_backward -> stuck? `python -m minivit hint cls_token_forward`", HP)
v("tokens__dpos_no_batch_sum", False, True, "yes",
  "A parameter's gradient is not summed over the batch and the tokens. Every position (every token of every image) used the same parameter",
  "advice+" + HP, "wrong for E_pos: each token has its own row, dpos is summed over the batch only; also float32 -> hint pos_embed_forward")
v("tokens__dx_slice_off_by_one", True, True, "yes",
  "float32 check on cls_token_backward -> stuck? `python -m minivit hint cls_token_forward`", HP, "leak: 'so dx = dout[:, 1:]'")
v("tokens__pos_add_in_place", False, False, "yes")

res = {r["case"]: r for r in json.load(open("results.json"))["results"]}
assert set(res) == set(V), set(res) ^ set(V)
out = []
for c, r in res.items():
    d = dict(case=c, expect=r["expect"], function=r["function"], points=r.get("points"), max=r.get("max"),
             caught=r["caught"], auto_leak=r["leak"], auto_assign_lines=len(r["assign_lines"]), **V[c])
    out.append(d)
mis = [d for d in out if d["expect"] != "VALID"]
val = [d for d in out if d["expect"] == "VALID"]
caught = [d for d in mis if d["caught"]]
def rate(n, k): return f"{n}/{k} ({100 * n / k:.0f}%)"
summary = {
    "mistake_cases": len(mis), "valid_cases": len(val),
    "caught": rate(len(caught), len(mis)),
    "valid_full_marks": rate(sum(not d["caught"] for d in val), len(val)),
    "named_yes_of_caught": rate(sum(d["named"] == "yes" for d in caught), len(caught)),
    "named_partly_of_caught": rate(sum(d["named"] == "partly" for d in caught), len(caught)),
    "named_no_of_caught": rate(sum(d["named"] == "no" for d in caught), len(caught)),
    "leak_of_all": rate(sum(d["leak"] for d in out), len(out)),
    "misleading_of_all": rate(sum(d["misleading"] for d in out), len(out)),
    "misleading_advice_of_all": rate(sum(bool(d["misleading_kind"]) and "advice" in d["misleading_kind"] for d in out), len(out)),
    "misleading_hint_pointer_only": rate(sum(d["misleading_kind"] == HP for d in out), len(out)),
    "auto_leak_agrees_with_reader": rate(sum(d["auto_leak"] == d["leak"] for d in out), len(out)),
}
json.dump({"summary": summary, "verdicts": out}, open("verdicts.json", "w"), indent=1)
print(json.dumps(summary, indent=1))
