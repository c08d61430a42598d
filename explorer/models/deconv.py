"""The decoders' upsampling layer: a transposed convolution that is quick to run in the app.

oneDNN, which torch uses for nn.ConvTranspose2d on a CPU, is slow when the layer has few output
channels: for the 81 pictures of a 9x9 grid the VAEs' last layer (32 -> 1 channels, 14x14 ->
28x28) took 4.7 ms, against 0.9 ms in torch's own (im2col) kernel, and the GANs' (64 -> 1) 13.6 ms
against 0.9; their outputs agree to 2e-6. With 8 or more outputs oneDNN is as quick or quicker
(benchmarks/reports/deconv.md, `python -m benchmarks.deconv`). So
`ConvTranspose2d` runs the native kernel for FEW_OUTPUTS or fewer channels, and only without
gradients on a CPU (the app's decodes): training keeps nn.ConvTranspose2d's own path, its
autocast and its backward, unchanged. It is a subclass: parameters, state dicts and stored
checkpoints are those of nn.ConvTranspose2d.
"""

from __future__ import annotations

import torch
from torch import nn

FEW_OUTPUTS = 4


class ConvTranspose2d(nn.ConvTranspose2d):
    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if (self.out_channels <= FEW_OUTPUTS and not torch.is_grad_enabled() and output_size is None
                and x.device.type == "cpu" and x.dtype == torch.float32 and self.groups == 1
                and self.padding_mode == "zeros" and x.dim() == 4):
            return torch._C._nn.slow_conv_transpose2d(x, self.weight, self.kernel_size, self.bias, self.stride,
                                                      self.padding, self.output_padding, self.dilation)
        return super().forward(x, output_size)
