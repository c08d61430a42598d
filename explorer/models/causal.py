"""The causal machinery every autoregressive family shares: masks, masked convolutions, the
grid's input map, the output head, and the buffers of cached (fast) sampling.

Papers:
  - van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016
    (masked convolutions of type A and B).
  - van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu, "Conditional Image
    Generation with PixelCNN Decoders", NeurIPS 2016 (the vertical and horizontal stacks'
    kernels).
  - Ramachandran, Le Paine, Khorrami, Babaeizadeh, Chang, Zhang, Hasegawa-Johnson, Campbell
    & Huang, "Fast Generation for Convolutional Autoregressive Models", ICLR 2017 workshop
    (cache every layer's outputs so that each new position costs one position per layer).
  - van den Oord, Vinyals & Kavukcuoglu, "Neural Discrete Representation Learning", NeurIPS
    2017 (VQ-VAE: the same models run over a grid of K-way codes, its prior).

A grid is (N, 1, H, W), modelled position by position in raster order. Its values are
pixels (binary 0/1, or the 256 grey levels k/255) or K-way integer codes 0..K-1 stored as
floats (a VQ-VAE's code map, any H x W). `GridInput` is what a value becomes at the
network's input: a pixel enters as 2x - 1 (one channel), a code as a learnt vector (an input
embedding, `channels` wide). Everything after the input is the same for both.

Masks. A masked convolution multiplies its kernel by a fixed 0/1 mask on every call (the
weights themselves are never edited), so the output at a position only sees positions
before it. Drawn for a 5x5 kernel; the centre cell lies over the output position:

    type A: first layer; the value      type B: later layers; the centre holds
    itself is what is predicted, so     features of earlier positions only, so
    the centre is hidden                it is seen
        1 1 1 1 1                           1 1 1 1 1
        1 1 1 1 1                           1 1 1 1 1
        1 1 0 0 0                           1 1 1 0 0
        0 0 0 0 0                           0 0 0 0 0
        0 0 0 0 0                           0 0 0 0 0

The gated PixelCNN's two stacks use kernels whose shape alone is causal (drawn for k = 5
as 5x5 masks; each stack's kernel is only the block of ones):

    vertical stack, kernel (k//2+1) x k     horizontal stack, kernel 1 x (k//2+1)
        1 1 1 1 1                               0 0 0 0 0
        1 1 1 1 1                               0 0 0 0 0
        1 1 1 1 1   (own row included)          1 1 c 0 0   (c = 0 in the first layer,
        0 0 0 0 0                               0 0 0 0 0    type A; c = 1 after, type B)
        0 0 0 0 0                               0 0 0 0 0

Fast sampling (after Ramachandran et al.). Every layer's outputs are kept in a zero-padded,
channels-last buffer the size of the grid. A causal kernel splits into the rows above its
output position and the output's own row (`CachedConv`). When grid row r starts, the
rows-above part of every layer is computed for the whole row at once (those inputs are all
final); then each position adds only its own row's few taps, one small matrix product per
layer. `CachedStepper` holds what every family's stepper shares: the input grid as the
network sees it, written one position behind, and the head at one position. The families
(`pixelcnn.py`, `pixelrnn.py`) add their own per-layer state on top.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import AutoregressiveModel, PixelStepper

# --- masks -----------------------------------------------------------------------------------

def pixelcnn_mask(kernel: int, mask_type: str) -> torch.Tensor:
    """The k x k mask of a PixelCNN layer, type "A" (first layer) or "B" (drawn above)."""
    if mask_type not in ("A", "B") or kernel % 2 == 0:
        raise ValueError(f"need an odd kernel and mask type 'A' or 'B', got {kernel}, {mask_type!r}")
    mask = torch.ones(kernel, kernel)
    centre = kernel // 2
    mask[centre, centre + (mask_type == "B"):] = 0   # the centre (type A) and everything right of it
    mask[centre + 1:, :] = 0                         # every row below
    return mask


def vertical_mask(kernel: int) -> torch.Tensor:
    """(k//2 + 1) x k, all ones: the kernel's shape alone keeps it to rows <= the output's."""
    return torch.ones(kernel // 2 + 1, kernel)


def horizontal_mask(kernel: int, mask_type: str) -> torch.Tensor:
    """1 x (k//2 + 1): pixels left of the output, and the output's own position for type B."""
    mask = torch.ones(1, kernel // 2 + 1)
    if mask_type == "A":
        mask[0, -1] = 0
    return mask


class MaskedConv2d(nn.Module):
    """A convolution whose kernel is multiplied by a fixed 0/1 mask on every call.

    `anchor` is the kernel cell that lies over the output pixel ((k//2, k//2) for a k x k
    PixelCNN mask); the input is zero-padded so the output has the input's height and width.
    Kernel rows below the last row that holds a 1 are dropped: they would only multiply
    zeros (a 3x3 type-B kernel is stored as its top 2x3, a third less work). A mask that is
    then all ones (the gated stacks' kernels but the first horizontal one, the Row LSTM's
    input taps) is not applied at all: the kernel's shape alone is causal, and skipping the
    multiply saves two operations per call (forward and backward).
    """

    def __init__(self, in_channels: int, out_channels: int, mask: torch.Tensor, anchor: tuple[int, int]) -> None:
        super().__init__()
        mask = mask[:int(mask.any(1).nonzero().max()) + 1]
        if mask.shape[0] <= anchor[0] or mask[anchor[0] + 1:].any():
            raise ValueError("a causal mask keeps no taps below the anchor's row")
        kh, kw = mask.shape
        self.anchor = anchor
        # F.pad order: (left, right, top, bottom)
        self.padding = (anchor[1], kw - 1 - anchor[1], anchor[0], kh - 1 - anchor[0])
        self.register_buffer("mask", mask.clone(), persistent=False)  # rebuilt from config
        self.mask_is_full = bool(mask.all())
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kh, kw))
        self.bias = nn.Parameter(torch.empty(out_channels))
        # Scale the initial weights by the taps the mask keeps, not the whole kernel.
        bound = 1.0 / math.sqrt(in_channels * float(mask.sum()))
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def masked_weight(self) -> torch.Tensor:
        return self.weight if self.mask_is_full else self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, self.padding), self.masked_weight(), self.bias)




class CachedConv:
    """A masked convolution cut up for the cached path: weights flattened, for matrix products.

    The cached path keeps every activation in a channels-last buffer (N, H + 2p, W + 2p, C),
    zero-padded by p on every side: image pixel (i, j) sits at buffer[:, i + p, j + p]. A
    causal kernel splits into the rows above the anchor (whole image rows: computed once
    per row) and the anchor's own row (the taps that change with every pixel).
    """

    @torch.no_grad()
    def __init__(self, conv: MaskedConv2d) -> None:
        w = conv.masked_weight()                                 # (out, in, kh, kw)
        (ar, ac), (kh, kw) = conv.anchor, w.shape[2:]
        self.anchor, self.kh, self.kw = (ar, ac), kh, kw
        self.taps = int(conv.mask[ar].nonzero().max()) + 1       # anchor-row columns 0 .. taps - 1

        def flat(w_part: torch.Tensor) -> torch.Tensor:          # (out, in, r, k) -> (r * k * in, out)
            return w_part.permute(2, 3, 1, 0).reshape(-1, w.shape[0]).contiguous()

        self.above = flat(w[:, :, :ar])
        self.current = flat(w[:, :, ar:ar + 1, :self.taps])
        self.whole = flat(w)
        self.bias = conv.bias.detach()

    @staticmethod
    def _row_windows(buffer: torch.Tensor, top: int, rows: int, left: int, width: int, kw: int) -> torch.Tensor:
        """The kernel windows of every output along a row, flat: (N * width, rows * kw * C)."""
        n, _, _, c = buffer.shape
        sn, sh, sw, sc = buffer.stride()
        windows = buffer.as_strided((n, width, rows, kw, c), (sn, sw, sh, sw, sc),
                                    buffer.storage_offset() + top * sh + left * sw)
        return windows.reshape(n * width, rows * kw * c)

    def rows_above(self, buffer: torch.Tensor, row: int, width: int, pad: int) -> torch.Tensor:
        """The rows-above part of the outputs along `row`, bias included: (N, width, out)."""
        n, ar = buffer.shape[0], self.anchor[0]
        if ar == 0:
            return self.bias.expand(n, width, -1)
        windows = self._row_windows(buffer, row + pad - ar, ar, pad - self.anchor[1], width, self.kw)
        return torch.addmm(self.bias, windows, self.above).view(n, width, -1)

    def whole_row(self, buffer: torch.Tensor, row: int, width: int, pad: int) -> torch.Tensor:
        """The outputs along `row` from the whole kernel, bias included: (N, width, out)."""
        windows = self._row_windows(buffer, row + pad - self.anchor[0], self.kh, pad - self.anchor[1],
                                    width, self.kw)
        return torch.addmm(self.bias, windows, self.whole).view(buffer.shape[0], width, -1)

    def pixel_windows(self, buffer_row: torch.Tensor, width: int, pad: int) -> list[torch.Tensor]:
        """The anchor-row windows of every output along a row, as views: [(N, taps * in)] * width.

        `buffer_row` is the anchor's row of a buffer, (N, W + 2p, C). The taps of one output
        are consecutive in memory (channels-last), so each window is a strided view and
        `torch.addmm(base, windows[col], self.current)` reads the buffer as it is when called.
        Cut once per row, they save the slicing at every pixel (the cached path is bound by
        the number of small operations per pixel, not by arithmetic).
        """
        n, _, c = buffer_row.shape
        sn, sw, _ = buffer_row.stride()
        windows = buffer_row.as_strided((width, n, self.taps * c), (sw, sn, 1),
                                        buffer_row.storage_offset() + (pad - self.anchor[1]) * sw)
        return list(windows.unbind(0))



class GridInput(nn.Module):
    """What a grid value becomes at the network's input: (N, 1, H, W) -> (N, channels, H, W).

    Pixels: 2x - 1, one channel, no parameters (so pixel models' state dicts are unchanged).
    Codes (num_codes = K > 0): a learnt vector per code, `width` channels: an input embedding.
    """

    def __init__(self, num_codes: int = 0, width: int = 1) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_codes, width) if num_codes else None
        self.channels = width if num_codes else 1
        self.register_buffer("minus_one", torch.full((1,), -1.0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.embedding is None:
            return x * 2.0 - 1.0
        return self.embedding(x[:, 0].long()).permute(0, 3, 1, 2)           # (N, C, H, W)

    @torch.no_grad()
    def write(self, value: torch.Tensor, out: torch.Tensor) -> None:
        """The input features of one position, (N, 1) values -> `out` (N, channels), in place."""
        if self.embedding is None:   # -1 + 2x in one op (exact for pixel levels k / 255)
            torch.add(self.minus_one, value, alpha=2.0, out=out)
        else:
            out.copy_(self.embedding.weight[value[:, 0].long()])


def as_matmul(conv: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1x1 convolution as (weight (in, out), bias), for `torch.addmm` at one pixel."""
    return conv.weight.detach().flatten(1).t().contiguous(), conv.bias.detach()


class HeadAtPixel:
    """The 1x1 output head of a causal model on the features at one position: (N, C) -> (N, K)."""

    def __init__(self, model: "CausalModel") -> None:
        self.hidden, self.out = as_matmul(model.head_hidden), as_matmul(model.head_out)

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        hidden = torch.addmm(self.hidden[1], torch.relu(h), self.hidden[0])
        return torch.addmm(self.out[1], hidden.relu_(), self.out[0])


def gate(pre: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """The gated unit tanh(a) * sigmoid(b), a and b the two halves of `pre` along `dim`."""
    a, b = pre.chunk(2, dim=dim)
    return torch.tanh(a) * torch.sigmoid(b)


class CausalModel(AutoregressiveModel):
    """What every autoregressive family shares: config checks, the grid's input map and the
    1x1 output head. A family implements `features_to_logits`; `logits` is the input map
    followed by it, so gradients (receptive fields) can be taken at the input features,
    which exist for codes as for pixels.

    Code grids: `output="codes"` with `num_codes=K` models a K-way integer grid of any
    data_shape (1, H, W); the codes enter through an input embedding `channels` wide.

    The head's parameter names (`head_hidden`, `head_out`) are part of every shipped
    checkpoint's state dict: keep them.
    """

    kernel_keys: tuple[str, ...] = ("first_kernel", "kernel")   # config sizes that must be odd, >= 3

    def __init__(self, **config) -> None:
        super().__init__(**config)
        if self.output_kind not in self.OUTPUT_KINDS:
            raise ValueError(f"{self.name}: output must be one of {sorted(self.OUTPUT_KINDS)}, "
                             f"not {self.output_kind!r}")
        codes = int(self.config.get("num_codes", 0))
        if (self.output_kind == "codes") != (codes > 0) or codes == 1:
            raise ValueError(f"{self.name}: a code grid needs output='codes' and num_codes >= 2 together "
                             f"(got output={self.output_kind!r}, num_codes={codes})")
        if self.data_shape[0] != 1:
            raise ValueError(f"{self.name} models one-channel grids, not {self.data_shape}")
        for key in self.kernel_keys:
            if self.config[key] % 2 == 0 or self.config[key] < 3:
                raise ValueError(f"{self.name}: {key} must be odd and at least 3")
        h = self.config["channels"]
        self.grid_input = GridInput(codes, h)
        self.head_hidden = nn.Conv2d(h, h, 1)
        self.head_out = nn.Conv2d(h, self.num_logits, 1)

    def logits(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.features_to_logits(self.grid_input(x), y)

    def features_to_logits(self, features: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Input features (N, C_in, H, W) (see `GridInput`) -> logits (N, K, 1, H, W)."""
        raise NotImplementedError

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        return self.head_out(F.relu(self.head_hidden(F.relu(h))))


class CachedStepper(PixelStepper):
    """Buffers shared by every cached stepper: the grid as the network sees it, padded.

    All buffers are channels-last, (N, H + 2p, W + 2p, C), and start at zero, which is the
    convolutions' zero padding. `image` holds the input features (`GridInput`: 2x - 1 for
    pixels, embeddings for codes), written one position behind the current one (a value is
    final once the step after it starts).
    """

    def __init__(self, model: CausalModel, n: int, pad: int) -> None:
        self.model, self.n, self.pad = model, n, pad
        p = next(model.parameters())
        self._like = dict(dtype=p.dtype, device=p.device)
        _, self.height, self.width = model.data_shape
        self.grid_input = model.grid_input
        self.image = self.buffer(self.grid_input.channels)
        self.head = HeadAtPixel(model)                       # features at a position -> (N, K) logits

    def buffer(self, channels: int) -> torch.Tensor:
        return torch.zeros(self.n, self.height + 2 * self.pad, self.width + 2 * self.pad, channels, **self._like)

    def write_previous_pixel(self, x: torch.Tensor, row: int, col: int) -> None:
        prev_row, prev_col = (row, col - 1) if col > 0 else (row - 1, self.width - 1)
        if prev_row >= 0:
            self.grid_input.write(x[:, :, prev_row, prev_col], self.image[:, prev_row + self.pad, prev_col + self.pad])
