"""Masked convolutions, PixelCNN and gated PixelCNN, with per-layer caches for fast sampling.

Papers:
  - van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016
    (PixelCNN: masked convolutions of type A and B; the 81.30 nats on binarized MNIST).
  - van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu, "Conditional Image
    Generation with PixelCNN Decoders", NeurIPS 2016 (gated PixelCNN: vertical and
    horizontal stacks that remove the blind spot, gated units, class conditioning).
  - Ramachandran, Le Paine, Khorrami, Babaeizadeh, Chang, Zhang, Hasegawa-Johnson, Campbell
    & Huang, "Fast Generation for Convolutional Autoregressive Models", ICLR 2017 workshop
    (cache every layer's outputs so that each new pixel costs one position per layer).

Both models read an image (N, 1, H, W) in [0, 1] and return, for every pixel, the logits of
its conditional given the pixels before it in raster order: one logit (Bernoulli, binarized
MNIST) or 256 (8-bit grey, Fashion-MNIST). Pixels enter the network as 2x - 1.

Masks. A masked convolution multiplies its kernel by a fixed 0/1 mask on every call (the
weights themselves are never edited), so the output at a pixel only sees pixels before it.
Drawn for a 5x5 kernel; the centre cell lies over the output pixel:

    type A: first layer; the pixel      type B: later layers; the centre holds
    itself is what is predicted, so     features of earlier pixels only, so it
    the centre is hidden                is seen
        1 1 1 1 1                           1 1 1 1 1
        1 1 1 1 1                           1 1 1 1 1
        1 1 0 0 0                           1 1 1 0 0
        0 0 0 0 0                           0 0 0 0 0
        0 0 0 0 0                           0 0 0 0 0

Stacking type-B layers leaves a blind spot: the receptive field grows up, left and
up-left, but up-right it never reaches past the first layer's kernel. Measured with
`explorer.sampling.receptive_field` (o: seen, .: not seen, X: the pixel predicted), for
the default PixelCNN (7x7 A + 7 x 3x3 B) and gated PixelCNN (first kernel 7, 8 layers),
rows 6..12, columns 3..24 of a 28x28 image:

    PixelCNN                                        gated PixelCNN
    o o o o o o o o o o o o o o o o o o o . . .     o o o o o o o o o o o o o o o o o o o o o .
    o o o o o o o o o o o o o o o o o o . . . .     o o o o o o o o o o o o o o o o o o o o o .
    o o o o o o o o o o o o o o o o o . . . . .     o o o o o o o o o o o o o o o o o o o o o .
    o o o o o o o o o o o o o o o o . . . . . .     o o o o o o o o o o o o o o o o o o o o o .
    o o o o o o o o o o o o o o o . . . . . . .     o o o o o o o o o o o o o o o o o o o o o .
    o o o o o o o o o o o o o o . . . . . . . .     o o o o o o o o o o o o o o o o o o o o o .
    o o o o o o o o o o X . . . . . . . . . . .     o o o o o o o o o o X . . . . . . . . . . .

Gated PixelCNN splits every layer in two stacks that together see everything above and to
the left. Drawn for k = 5 as 5x5 masks (centre over the output pixel); each stack's
kernel is only the block of ones, so no multiply is wasted on zeros:

    vertical stack, kernel (k//2+1) x k     horizontal stack, kernel 1 x (k//2+1)
        1 1 1 1 1                               0 0 0 0 0
        1 1 1 1 1                               0 0 0 0 0
        1 1 1 1 1   (own row included)          1 1 c 0 0   (c = 0 in the first layer,
        0 0 0 0 0                               0 0 0 0 0    type A; c = 1 after, type B)
        0 0 0 0 0                               0 0 0 0 0

The vertical stack at (r, c) sees rows <= r (also pixels right of c in row r), so the
horizontal stack only ever takes it from the row above: h(r, c) += 1x1(v(r - 1, c)). The
horizontal stack has a residual connection; both use the gated unit tanh(a) * sigmoid(b),
and a class label adds a learnt bias to both (conditional generation).

Fast sampling (`fast_stepper`, after Ramachandran et al.). Every layer's outputs are kept
in a zero-padded buffer the size of the image. A causal kernel splits into the rows above
its output pixel and the output's own row. When image row r starts, the rows-above part of
every layer is computed for the whole row at once (those inputs are all final); then each
pixel adds only its own row's few taps, one small matrix product per layer, and writes its
output for the layers above it. The gated model's vertical stack of row r - 1 needs all of
row r - 1, so it too is computed once, when row r starts. Each pixel thus costs one
position per layer instead of a pass over the whole image, and the logits match the
parallel pass up to float rounding (about 1e-7).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import AutoregressiveModel, PixelStepper, register


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


class _CachedConv:
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


def _scale(x: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1] -> network input in [-1, 1]."""
    return x * 2.0 - 1.0


def _as_matmul(conv: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1x1 convolution as (weight (in, out), bias), for `torch.addmm` at one pixel."""
    return conv.weight.detach().flatten(1).t().contiguous(), conv.bias.detach()


class _HeadAtPixel:
    """The 1x1 output head of a PixelCNN-family model on features at one pixel: (N, C) -> (N, K)."""

    def __init__(self, model: "_PixelCNNFamily") -> None:
        self.hidden, self.out = _as_matmul(model.head_hidden), _as_matmul(model.head_out)

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        hidden = torch.addmm(self.hidden[1], torch.relu(h), self.hidden[0])
        return torch.addmm(self.out[1], hidden.relu_(), self.out[0])


def _gate(pre: torch.Tensor, dim: int = 1) -> torch.Tensor:
    a, b = pre.chunk(2, dim=dim)
    return torch.tanh(a) * torch.sigmoid(b)


class _PixelCNNFamily(AutoregressiveModel):
    """What the PixelCNN and PixelRNN models share: config checks and the 1x1 output head.

    The head's parameter names (`head_hidden`, `head_out`) are part of every shipped
    checkpoint's state dict: keep them.
    """

    kernel_keys: tuple[str, ...] = ("first_kernel", "kernel")   # config sizes that must be odd, >= 3

    def __init__(self, **config) -> None:
        super().__init__(**config)
        if self.output_kind not in self.OUTPUT_KINDS:
            raise ValueError(f"{self.name}: output must be one of {sorted(self.OUTPUT_KINDS)}, "
                             f"not {self.output_kind!r}")
        if self.data_shape[0] != 1:
            raise ValueError(f"{self.name} models one-channel (grey) images, not {self.data_shape}")
        for key in self.kernel_keys:
            if self.config[key] % 2 == 0 or self.config[key] < 3:
                raise ValueError(f"{self.name}: {key} must be odd and at least 3")
        h = self.config["channels"]
        self.head_hidden = nn.Conv2d(h, h, 1)
        self.head_out = nn.Conv2d(h, self.num_logits, 1)

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        return self.head_out(F.relu(self.head_hidden(F.relu(h))))


@register
class PixelCNN(_PixelCNNFamily):
    """A type-A k x k masked convolution, then residual type-B layers, then a 1x1 head.

        x (1) -7x7 A-> h (C) -> [h + 3x3 B(relu(h))] x layers -> relu, 1x1, relu, 1x1 -> K logits

    The paper's residual block wraps its 3x3 in 1x1 convolutions; a plain 3x3 keeps this
    small model faster on a CPU. It has the blind spot drawn in the module docstring.
    """

    name = "pixelcnn"
    description = "PixelCNN"
    defaults = {"channels": 64, "layers": 7, "first_kernel": 7, "kernel": 3, "output": "bernoulli",
                "data_shape": [1, 28, 28]}

    def __init__(self, **config) -> None:
        super().__init__(**config)
        c, k0, k = self.config["channels"], self.config["first_kernel"], self.config["kernel"]
        self.first = MaskedConv2d(1, c, pixelcnn_mask(k0, "A"), (k0 // 2, k0 // 2))
        self.blocks = nn.ModuleList(MaskedConv2d(c, c, pixelcnn_mask(k, "B"), (k // 2, k // 2))
                                    for _ in range(self.config["layers"]))

    def logits(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.first(_scale(x))                    # (N, C, H, W)
        for conv in self.blocks:
            h = h + conv(F.relu(h))
        return self._head(h).unsqueeze(2)            # (N, K, 1, H, W)

    def fast_stepper(self, n: int, y: torch.Tensor | None = None) -> PixelStepper:
        return _PixelCNNStepper(self, n)


class _CachedStepper(PixelStepper):
    """Buffers shared by every cached stepper (PixelCNN, gated, PixelRNN): the image as the network sees it (2x - 1), padded.

    All buffers are channels-last, (N, H + 2p, W + 2p, C), and start at zero, which is the
    convolutions' zero padding. The image is written one pixel behind the current position
    (a pixel is final once the step after it starts).
    """

    def __init__(self, model: _PixelCNNFamily, n: int, pad: int) -> None:
        self.model, self.n, self.pad = model, n, pad
        p = next(model.parameters())
        self._like = dict(dtype=p.dtype, device=p.device)
        _, self.height, self.width = model.data_shape
        self.image = self.buffer(1)
        self._minus_one = torch.full((1,), -1.0, **self._like)
        self.head = _HeadAtPixel(model)                       # features at a pixel -> (N, K) logits

    def buffer(self, channels: int) -> torch.Tensor:
        return torch.zeros(self.n, self.height + 2 * self.pad, self.width + 2 * self.pad, channels, **self._like)

    def write_previous_pixel(self, x: torch.Tensor, row: int, col: int) -> None:
        prev_row, prev_col = (row, col - 1) if col > 0 else (row - 1, self.width - 1)
        if prev_row >= 0:   # _scale, written in place: -1 + 2x (exact for pixel levels k / 255)
            torch.add(self._minus_one, x[:, :, prev_row, prev_col], alpha=2.0,
                      out=self.image[:, prev_row + self.pad, prev_col + self.pad])


class _PixelCNNStepper(_CachedStepper):
    """Per-layer caches for PixelCNN. Buffers: the image, and act[i] = relu(h) entering block i.

    When a row starts, every layer's contribution from the rows above is computed for the
    whole row (one matrix product each), and the row is cut into per-pixel views; then each
    pixel costs, per layer, one write of relu(h), one matrix product over its own row's taps
    and one add.
    """

    @torch.no_grad()
    def __init__(self, model: PixelCNN, n: int) -> None:
        super().__init__(model, n, max(model.config["first_kernel"], model.config["kernel"]) // 2)
        self.convs = [_CachedConv(conv) for conv in (model.first, *model.blocks)]
        self.inputs = [self.image] + [self.buffer(model.config["channels"]) for _ in model.blocks]
        # Per conv, per column of the current row (lists of views, cut when the row starts):
        self.above: list[list[torch.Tensor]] = []     # the rows-above part plus bias, (N, out)
        self.windows: list[list[torch.Tensor]] = []   # the anchor-row taps, (N, taps * in)
        self.slots: list[list[torch.Tensor]] = []     # where relu(h) goes in the conv's input, (N, C)

    def _start_row(self, row: int) -> None:
        pad, width = self.pad, self.width
        rows = [buf[:, row + pad] for buf in self.inputs]                                 # (N, W + 2p, C)
        self.above = [list(conv.rows_above(buf, row, width, pad).unbind(1)) for conv, buf in zip(self.convs, self.inputs)]
        self.windows = [conv.pixel_windows(buf_row, width, pad) for conv, buf_row in zip(self.convs, rows)]
        self.slots = [list(buf_row[:, pad:pad + width].unbind(1)) for buf_row in rows]

    @torch.no_grad()
    def logits_at(self, x: torch.Tensor, row: int, col: int) -> torch.Tensor:
        self.write_previous_pixel(x, row, col)
        if col == 0:
            self._start_row(row)
        h = torch.addmm(self.above[0][col], self.windows[0][col], self.convs[0].current)   # (N, C)
        for i in range(1, len(self.convs)):
            torch.clamp_min(h, 0.0, out=self.slots[i][col])                              # relu(h), in place
            h = h + torch.addmm(self.above[i][col], self.windows[i][col], self.convs[i].current)
        return self.head(h)                                                               # (N, K)


class GatedLayer(nn.Module):
    """One gated PixelCNN layer: a vertical and a horizontal stack, linked from above.

        v_pre = vconv(v) + class bias                     (N, 2C, H, W), sees rows <= r
        h_pre = hconv(h) + link(v_pre shifted down one row) + class bias
        v'    = tanh * sigmoid (v_pre)
        h'    = h + 1x1(tanh * sigmoid (h_pre))           (no residual in the first layer)
    """

    def __init__(self, in_channels: int, channels: int, kernel: int, first: bool, num_classes: int) -> None:
        super().__init__()
        self.first = first
        self.vconv = MaskedConv2d(in_channels, 2 * channels, vertical_mask(kernel), (kernel // 2, kernel // 2))
        self.hconv = MaskedConv2d(in_channels, 2 * channels, horizontal_mask(kernel, "A" if first else "B"),
                                  (0, kernel // 2))
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.hout = nn.Conv2d(channels, channels, 1)
        # One learnt bias per class for each stack: (num_classes, 2C + 2C).
        self.class_bias = nn.Embedding(num_classes, 4 * channels) if num_classes else None
        if self.class_bias is not None:
            nn.init.zeros_(self.class_bias.weight)

    def biases(self, y: torch.Tensor | None) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """The class biases for the two stacks, each (N, 2C); plain zeros without classes."""
        if self.class_bias is None or y is None:
            return 0.0, 0.0
        bv, bh = self.class_bias(y).chunk(2, dim=1)
        return bv, bh

    def forward(self, v: torch.Tensor, h: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        bv, bh = self.biases(y)
        if torch.is_tensor(bv):
            bv, bh = bv[:, :, None, None], bh[:, :, None, None]
        v_pre = self.vconv(v) + bv
        v_above = F.pad(v_pre, (0, 0, 1, 0))[:, :, :-1]     # row r holds v_pre of row r - 1
        h_pre = self.hconv(h) + self.link(v_above) + bh
        h_new = self.hout(_gate(h_pre))
        return _gate(v_pre), h_new if self.first else h + h_new


@register
class GatedPixelCNN(_PixelCNNFamily):
    """Gated PixelCNN: vertical + horizontal stacks (no blind spot), optional class labels.

        x -> GatedLayer(first, k0) -> GatedLayer(k) x (layers - 1) -> h -> relu, 1x1, relu, 1x1 -> K
    """

    name = "gated_pixelcnn"
    description = "gated PixelCNN"
    defaults = {"channels": 32, "layers": 8, "first_kernel": 7, "kernel": 3, "output": "bernoulli",
                "num_classes": 0, "data_shape": [1, 28, 28]}

    def __init__(self, **config) -> None:
        super().__init__(**config)
        c, k0, k = self.config["channels"], self.config["first_kernel"], self.config["kernel"]
        if self.config["layers"] < 1:
            raise ValueError(f"{self.name}: layers must be at least 1")
        self.layers = nn.ModuleList(
            [GatedLayer(1, c, k0, True, self.num_classes)]
            + [GatedLayer(c, c, k, False, self.num_classes) for _ in range(self.config["layers"] - 1)])

    def logits(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = self._check_labels(y, x.shape[0])
        v = h = _scale(x)                            # (N, 1, H, W)
        for layer in self.layers:
            v, h = layer(v, h, y)                    # (N, C, H, W) each
        return self._head(h).unsqueeze(2)            # (N, K, 1, H, W)

    def fast_stepper(self, n: int, y: torch.Tensor | None = None) -> PixelStepper:
        return _GatedStepper(self, n, self._check_labels(y, n))


class _GatedStepper(_CachedStepper):
    """Per-layer caches for the gated PixelCNN. Buffers: the image, and v[i], h[i], the
    outputs of layer i (the inputs of layer i + 1; the last layer's are never read).

    When row r starts, the vertical stacks of row r - 1 are computed for the whole row (they
    need all of it), and with them `row_terms[i]`, everything layer i's horizontal stack adds
    that does not depend on row r: the link from above, the biases and the class bias. Each
    pixel then costs one position of every horizontal stack.
    """

    @torch.no_grad()
    def __init__(self, model: GatedPixelCNN, n: int, y: torch.Tensor | None) -> None:
        super().__init__(model, n, max(model.config["first_kernel"], model.config["kernel"]) // 2)
        c = model.config["channels"]
        self.layers = model.layers
        self.vconvs = [_CachedConv(layer.vconv) for layer in model.layers]
        self.hconvs = [_CachedConv(layer.hconv) for layer in model.layers]
        self.links = [_as_matmul(layer.link) for layer in model.layers]
        self.houts = [_as_matmul(layer.hout) for layer in model.layers]
        self.class_biases = [layer.biases(y) for layer in model.layers]   # (N, 2C) each, or zeros
        self.v = [self.image] + [self.buffer(c) for _ in model.layers[:-1]]   # v[i]: input of layer i
        # h[i], the horizontal input of layer i, is only read along the current row: one
        # padded row each, (N, W + 2p, C), overwritten as the row goes.
        self.h = [None] + [torch.zeros(n, self.width + 2 * self.pad, c, **self._like) for _ in model.layers[1:]]
        # Per-column views of those rows, cut once: [layer][col] (see _CachedConv.pixel_windows).
        self.h_windows = [None] + [conv.pixel_windows(h, self.width, self.pad) for conv, h in zip(self.hconvs[1:], self.h[1:])]
        self.h_slots = [None] + [list(h[:, self.pad:self.pad + self.width].unbind(1)) for h in self.h[1:]]
        self.image_windows: list[torch.Tensor] = []           # the first layer's, along the current row
        self.row_terms: list[list[torch.Tensor]] = []         # per layer, per column, (N, 2C)

    def _start_row(self, row: int) -> None:
        """Vertical stacks of row - 1 -> this row's terms (row 0 sees only padding above)."""
        pad, width = self.pad, self.width
        self.row_terms = []
        for i in range(len(self.layers)):
            link_weight, link_bias = self.links[i]
            bv, bh = self.class_biases[i]
            if row == 0:  # the row above is padding: link(0) is the link's bias
                link = link_bias.expand(self.n, width, -1)
            else:
                v_pre = self.vconvs[i].whole_row(self.v[i], row - 1, width, pad)         # (N, W, 2C)
                if torch.is_tensor(bv):
                    v_pre = v_pre + bv[:, None]
                link = (v_pre.reshape(-1, v_pre.shape[2]) @ link_weight).view_as(v_pre) + link_bias
                if i + 1 < len(self.v):
                    self.v[i + 1][:, row - 1 + pad, pad:pad + width] = _gate(v_pre, dim=2)
            term = link + self.hconvs[i].bias
            self.row_terms.append(list((term + bh[:, None] if torch.is_tensor(bh) else term).unbind(1)))
        self.image_windows = self.hconvs[0].pixel_windows(self.image[:, row + pad], width, pad)

    @torch.no_grad()
    def logits_at(self, x: torch.Tensor, row: int, col: int) -> torch.Tensor:
        pad = self.pad
        self.write_previous_pixel(x, row, col)
        if col == 0:
            self._start_row(row)
        h = None
        for i, layer in enumerate(self.layers):
            window = self.image_windows[col] if i == 0 else self.h_windows[i][col]       # (N, taps * C)
            h_pre = torch.addmm(self.row_terms[i][col], window, self.hconvs[i].current)   # (N, 2C)
            out_weight, out_bias = self.houts[i]
            gated = _gate(h_pre)
            h = torch.addmm(out_bias, gated, out_weight) if layer.first else torch.addmm(h + out_bias, gated, out_weight)
            if i + 1 < len(self.h):
                self.h_slots[i + 1][col].copy_(h)
        return self.head(h)                                                               # (N, K)
