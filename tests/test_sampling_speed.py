"""`benchmarks.sampling_speed.explain_difference`: when the naive and cached generations part,
it names the first pixel where they differ and measures how close that pixel's uniform was to a
boundary of its predictive CDF (a float tie), or flags a real bug."""

from __future__ import annotations

import torch

from benchmarks.sampling_speed import explain_difference
from explorer import sampling
from tests.helpers import tiny_pixelcnn


def test_a_flipped_pixel_is_found_and_its_distance_to_the_cdf_boundary_measured():
    model = tiny_pixelcnn("pixelcnn")
    n, seed = 3, 0
    naive = sampling.sample(model, n, generator=torch.Generator().manual_seed(seed), method="naive")
    row, col = 3, 5
    other = naive.clone()
    other[1, 0, row, col] = 1 - other[1, 0, row, col]     # sample 1 parts at (3, 5)
    other[2, 0, row + 2:] = 1 - other[2, 0, row + 2:]     # sample 2 parts later: not the first

    message = explain_difference(model, naive, other, seed=seed)

    u = torch.rand(naive.shape, generator=torch.Generator().manual_seed(seed))[1, 0, row, col].item()
    with torch.no_grad():
        p1 = torch.sigmoid(model.logits(naive)[1, 0, 0, row, col]).item()
    assert f"pixel ({row}, {col})" in message
    assert f"{abs(u - p1):.0e} from a CDF boundary" in message
    # an arbitrary flip is no rounding tie, unless the uniform happens to sit on p(1)
    assert ("NOT a rounding tie" in message) == (abs(u - p1) >= 1e-5)
