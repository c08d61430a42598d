"""PixelCNN and gated PixelCNN, with per-layer caches for fast sampling.

Papers:
  - van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016
    (PixelCNN: masked convolutions of type A and B; the 81.30 nats on binarized MNIST).
  - van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu, "Conditional Image
    Generation with PixelCNN Decoders", NeurIPS 2016 (gated PixelCNN: vertical and
    horizontal stacks that remove the blind spot, gated units, class conditioning).
  - Ramachandran, Le Paine, Khorrami, Babaeizadeh, Chang, Zhang, Hasegawa-Johnson, Campbell
    & Huang, "Fast Generation for Convolutional Autoregressive Models", ICLR 2017 workshop
    (cache every layer's outputs so that each new pixel costs one position per layer).

Both models read a grid (N, 1, H, W) and return, for every position, the logits of its
conditional given the positions before it in raster order: one logit (Bernoulli, binarized
MNIST), 256 (8-bit grey, Fashion-MNIST), or K over the codes of a K-way code grid (the
prior of a VQ-VAE, `vqvae.py`). The masks, the masked convolution, the input map (pixels as
2x - 1, codes through an embedding) and the cached-sampling buffers are in `causal.py`,
drawn there; this module holds the two networks and their steppers.

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
the left: a vertical stack over the rows above and the own row, and a horizontal stack over
the own row's left part (their kernels are drawn in `causal.py`).

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

import torch
import torch.nn.functional as F
from torch import nn

from .base import PixelStepper, register
from .causal import (CachedConv, CachedStepper, CausalModel, MaskedConv2d, as_matmul, gate, horizontal_mask,
                     pixelcnn_mask, vertical_mask)


@register
class PixelCNN(CausalModel):
    """A type-A k x k masked convolution, then residual type-B layers, then a 1x1 head.

        x (1) -7x7 A-> h (C) -> [h + 3x3 B(relu(h))] x layers -> relu, 1x1, relu, 1x1 -> K logits

    The paper's residual block wraps its 3x3 in 1x1 convolutions; a plain 3x3 keeps this
    small model faster on a CPU. It has the blind spot drawn in the module docstring.
    """

    name = "pixelcnn"
    description = "PixelCNN"
    defaults = {"channels": 64, "layers": 7, "first_kernel": 7, "kernel": 3, "output": "bernoulli",
                "num_codes": 0, "data_shape": [1, 28, 28]}

    def __init__(self, **config) -> None:
        super().__init__(**config)
        c, k0, k = self.config["channels"], self.config["first_kernel"], self.config["kernel"]
        self.first = MaskedConv2d(self.grid_input.channels, c, pixelcnn_mask(k0, "A"), (k0 // 2, k0 // 2))
        self.blocks = nn.ModuleList(MaskedConv2d(c, c, pixelcnn_mask(k, "B"), (k // 2, k // 2))
                                    for _ in range(self.config["layers"]))

    def features_to_logits(self, features: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.first(features)                     # (N, C, H, W)
        for conv in self.blocks:
            h = h + conv(F.relu(h))
        return self._head(h).unsqueeze(2)            # (N, K, 1, H, W)

    def fast_stepper(self, n: int, y: torch.Tensor | None = None) -> PixelStepper:
        return _PixelCNNStepper(self, n)


class _PixelCNNStepper(CachedStepper):
    """Per-layer caches for PixelCNN. Buffers: the image, and act[i] = relu(h) entering block i.

    When a row starts, every layer's contribution from the rows above is computed for the
    whole row (one matrix product each), and the row is cut into per-pixel views; then each
    pixel costs, per layer, one write of relu(h), one matrix product over its own row's taps
    and one add.
    """

    @torch.no_grad()
    def __init__(self, model: PixelCNN, n: int) -> None:
        super().__init__(model, n, max(model.config["first_kernel"], model.config["kernel"]) // 2)
        self.convs = [CachedConv(conv) for conv in (model.first, *model.blocks)]
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

    `dropout` drops entries of the 1x1's output while training (a small data set's code maps,
    one fixed map per image, are otherwise learnt by heart); evaluation and sampling use all.
    """

    def __init__(self, in_channels: int, channels: int, kernel: int, first: bool, num_classes: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.first, self.dropout = first, dropout
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
        h_new = F.dropout(self.hout(gate(h_pre)), self.dropout, self.training)
        return gate(v_pre), h_new if self.first else h + h_new


@register
class GatedPixelCNN(CausalModel):
    """Gated PixelCNN: vertical + horizontal stacks (no blind spot), optional class labels.

        x -> GatedLayer(first, k0) -> GatedLayer(k) x (layers - 1) -> h -> relu, 1x1, relu, 1x1 -> K
    """

    name = "gated_pixelcnn"
    description = "gated PixelCNN"
    defaults = {"channels": 32, "layers": 8, "first_kernel": 7, "kernel": 3, "output": "bernoulli",
                "num_classes": 0, "num_codes": 0, "dropout": 0.0, "data_shape": [1, 28, 28]}

    def __init__(self, **config) -> None:
        super().__init__(**config)
        c, k0, k, p = (self.config[key] for key in ("channels", "first_kernel", "kernel", "dropout"))
        if self.config["layers"] < 1:
            raise ValueError(f"{self.name}: layers must be at least 1")
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{self.name}: dropout must be in [0, 1), not {p}")
        self.layers = nn.ModuleList(
            [GatedLayer(self.grid_input.channels, c, k0, True, self.num_classes, p)]
            + [GatedLayer(c, c, k, False, self.num_classes, p) for _ in range(self.config["layers"] - 1)])

    def features_to_logits(self, features: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = self._check_labels(y, features.shape[0])
        v = h = features                             # (N, C_in, H, W): 1 channel for pixels
        for layer in self.layers:
            v, h = layer(v, h, y)                    # (N, C, H, W) each
        return self._head(h).unsqueeze(2)            # (N, K, 1, H, W)

    def fast_stepper(self, n: int, y: torch.Tensor | None = None) -> PixelStepper:
        return _GatedStepper(self, n, self._check_labels(y, n))


class _GatedStepper(CachedStepper):
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
        self.vconvs = [CachedConv(layer.vconv) for layer in model.layers]
        self.hconvs = [CachedConv(layer.hconv) for layer in model.layers]
        self.links = [as_matmul(layer.link) for layer in model.layers]
        self.houts = [as_matmul(layer.hout) for layer in model.layers]
        self.class_biases = [layer.biases(y) for layer in model.layers]   # (N, 2C) each, or zeros
        self.v = [self.image] + [self.buffer(c) for _ in model.layers[:-1]]   # v[i]: input of layer i
        # h[i], the horizontal input of layer i, is only read along the current row: one
        # padded row each, (N, W + 2p, C), overwritten as the row goes.
        self.h = [None] + [torch.zeros(n, self.width + 2 * self.pad, c, **self._like) for _ in model.layers[1:]]
        # Per-column views of those rows, cut once: [layer][col] (see CachedConv.pixel_windows).
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
                    self.v[i + 1][:, row - 1 + pad, pad:pad + width] = gate(v_pre, dim=2)
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
            gated = gate(h_pre)
            h = torch.addmm(out_bias, gated, out_weight) if layer.first else torch.addmm(h + out_bias, gated, out_weight)
            if i + 1 < len(self.h):
                self.h_slots[i + 1][col].copy_(h)
        return self.head(h)                                                               # (N, K)
