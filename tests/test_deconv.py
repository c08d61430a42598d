"""The decoders' transposed convolution: the native kernel it runs for few outputs gives what
nn.ConvTranspose2d gives, and training, gradients and stored weights are nn.ConvTranspose2d's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explorer.models.deconv import FEW_OUTPUTS, ConvTranspose2d


def pair(cin: int, cout: int, **kw) -> tuple[ConvTranspose2d, nn.ConvTranspose2d]:
    torch.manual_seed(0)
    ours = ConvTranspose2d(cin, cout, 4, 2, 1, **kw)
    plain = nn.ConvTranspose2d(cin, cout, 4, 2, 1, **kw)
    plain.load_state_dict(ours.state_dict())   # the same keys: checkpoints load into either
    return ours, plain


@pytest.mark.parametrize("cout", [1, FEW_OUTPUTS, FEW_OUTPUTS + 1, 16])
@pytest.mark.parametrize("batch", [1, 5])
def test_inference_matches_the_plain_layer(cout, batch):
    ours, plain = pair(8, cout)
    x = torch.randn(batch, 8, 7, 7)
    with torch.no_grad():
        got, want = ours(x), plain(x)
    assert got.shape == want.shape == (batch, cout, 14, 14)
    assert torch.allclose(got, want, atol=1e-5)


def test_the_native_kernel_runs_only_for_few_outputs_without_gradients(monkeypatch):
    calls = []
    native = torch._C._nn.slow_conv_transpose2d

    def spy(*args):
        calls.append(args[0].shape)
        return native(*args)

    monkeypatch.setattr(torch._C._nn, "slow_conv_transpose2d", spy)
    few, _ = pair(8, 1)
    many, _ = pair(8, FEW_OUTPUTS + 1)
    x = torch.randn(2, 8, 7, 7)
    with torch.no_grad():
        few(x), many(x)
    assert len(calls) == 1                       # few outputs, no gradients
    few(x)                                        # with gradients: the plain path
    assert len(calls) == 1


def test_gradients_and_training_are_the_plain_layers():
    ours, plain = pair(8, 1)
    x = torch.randn(3, 8, 7, 7)
    ours(x).square().sum().backward()
    plain(x).square().sum().backward()
    assert torch.allclose(ours.weight.grad, plain.weight.grad, atol=1e-5)
    assert torch.allclose(ours.bias.grad, plain.bias.grad, atol=1e-5)


def test_output_size_and_stride_settings_are_kept():
    ours, plain = pair(4, 1, output_padding=1, dilation=1)
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        assert torch.allclose(ours(x), plain(x), atol=1e-5)
        assert ours(x, output_size=[10, 10]).shape == plain(x, output_size=[10, 10]).shape == (2, 1, 10, 10)
