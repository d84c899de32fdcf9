"""Class activation maps of the torch model for a chosen class per sample (evaluation uses the label).

All methods work on the final features F (N, K, h, w) of `AUGuidedNet`, the layer the head pools:
- `cam`: sum_k w[c, k] F_k with the head weights (Zhou et al. 2016); no ReLU, as the paper's CAM.
- `gradcam`: ReLU(sum_k mean_ij(dS_c/dF_k) F_k) (Selvaraju et al. 2017).
- `gradcam++`: weights sum_ij alpha_kij ReLU(dS_c/dF_kij), alpha from the second/third-order terms
  under the exponential-score assumption (Chattopadhyay et al. 2018).
- `layercam`: ReLU(sum_k ReLU(dS_c/dF_k) * F_k) (Jiang et al. 2021).
S_c is the class logit (pre-softmax), the usual choice of pytorch-grad-cam and the reference code.

With this model's head (global average pooling + linear) dS_c/dF_kij = w[c, k] / (h w) everywhere,
so GradCAM equals ReLU(CAM) up to scale and LayerCAM keeps only the positively weighted channels;
after min-max normalisation the methods differ only through those ReLUs. They are computed the
general way anyway (autograd), so they stay right for any head.
"""

from __future__ import annotations

import torch

from train.model import AUGuidedNet

METHODS = ("cam", "gradcam", "gradcam++", "layercam")


def class_maps(
    model: AUGuidedNet, x: torch.Tensor, classes: torch.Tensor, method: str = "cam"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits (N, 7), attention (N, h, w), maps (N, h', w') for `classes`) in one forward pass."""
    if method not in METHODS:
        raise ValueError(f"unknown CAM method {method!r}; expected one of {', '.join(METHODS)}")
    idx = torch.arange(x.shape[0], device=x.device)
    if method == "cam":
        with torch.no_grad():
            aligned, final = model.forward_features(x)
            logits = model.logits_from(final)
            maps = model.cams_from(final)[idx, classes]
        return logits, aligned.mean(1), maps
    # Gradients are taken w.r.t. the final features only (the head is GAP + linear), so the backbone
    # runs without a graph.
    with torch.no_grad():
        aligned, final = model.forward_features(x)
    with torch.enable_grad():
        final = final.detach().requires_grad_(True)
        logits = model.logits_from(final)
        score = logits[idx, classes].sum()
        (grads,) = torch.autograd.grad(score, final)
    feats = final.detach()
    if method == "gradcam":
        weights = grads.mean(dim=(2, 3), keepdim=True)
        maps = torch.relu((weights * feats).sum(1))
    elif method == "gradcam++":
        g2 = grads.pow(2)
        g3 = grads.pow(3)
        denom = 2.0 * g2 + feats.sum(dim=(2, 3), keepdim=True) * g3
        alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
        weights = (alpha * torch.relu(grads)).sum(dim=(2, 3), keepdim=True)
        maps = torch.relu((weights * feats).sum(1))
    else:  # layercam
        maps = torch.relu((torch.relu(grads) * feats).sum(1))
    return logits.detach(), aligned.detach().mean(1), maps
