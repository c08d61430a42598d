"""PixelRNN: Row LSTM and Diagonal BiLSTM, with recurrent state carried for fast sampling.

Paper:
  - van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016
    (Row LSTM, Diagonal BiLSTM, the skew trick, residual connections, 7x7 mask-A first layer).

Both models read an image (N, 1, H, W) in [0, 1] and return, for every pixel, the logits of
its conditional given the pixels before it in raster order, exactly like the PixelCNN
models in `pixelcnn.py`, whose masked convolutions, input map, output head and config
checks they share (`causal.py`):

    x (1) -7x7 mask A-> h (C) -> [h + 1x1(LSTM(h))] x layers -> relu, 1x1, relu, 1x1 -> K logits

Only the recurrent layers differ. Gates are (i, f, o, g) as in a plain LSTM; c = f * c_prev
+ i * g and h = o * tanh(c). Images are one grey channel, so the input-to-state kernels
need no channel masks (the paper's masks B split the R, G, B channels); their only job is
to keep the output at a pixel from seeing that pixel, and the first mask-A layer already
does that: the features at (r, c) hold pixels before (r, c) only.

Row LSTM. The image is processed row by row; the state of row r comes from row r - 1:

    input-to-state: the 1x3 type-B mask along the row,   state-to-state: a 1-D convolution,
    taps at columns c - 1 and c (the never-used right    kernel 3, over row r - 1's hidden
    tap is not stored); all rows in one convolution      state; one row after another
        . . . . .                                            . s s s .     (row r - 1)
        . i i X .   (row r)                                  . . X . .     (row r)

The state-to-state kernel reaches one column further on either side for every row up, so
a pixel sees a triangle above it (the paper's "triangular receptive field"), and in its own
row only the first_kernel // 2 + layers pixels the input taps reach (5 by default), not the
whole context. Measured with
`explorer.sampling.receptive_field` (o: seen, .: not seen, X: the pixel predicted) for
the default Row LSTM and Diagonal BiLSTM, rows 6..12, columns 3..24 of a 28x28 image:

    Row LSTM                                        Diagonal BiLSTM
    o o o o o o o o o o o o o o o o o o o . . .     o o o o o o o o o o o o o o o o o o o o o o
    o o o o o o o o o o o o o o o o o o . . . .     o o o o o o o o o o o o o o o o o o o o o o
    . o o o o o o o o o o o o o o o o . . . . .     o o o o o o o o o o o o o o o o o o o o o o
    . . o o o o o o o o o o o o o o . . . . . .     o o o o o o o o o o o o o o o o o o o o o o
    . . . o o o o o o o o o o o o . . . . . . .     o o o o o o o o o o o o o o o o o o o o o o
    . . . . o o o o o o o o o o . . . . . . . .     o o o o o o o o o o o o o o o o o o o o o o
    . . . . . o o o o o X . . . . . . . . . . .     o o o o o o o o o o X . . . . . . . . . . .

Diagonal BiLSTM. Each layer sees (nearly) the whole context. The feature map is
skewed: row i moves i places right, so each anti-diagonal of the image becomes a column:

    image           skewed, (H, W + H - 1); "." is zero padding
    a b c d         a b c d . . .
    e f g h         . e f g h . .
    i j k l         . . i j k l .

In skewed space the state of column j comes from column j - 1 through a 2x1 convolution
(the rows k - 1 and k), and a whole column is one step: H + W - 1 steps in all. Back in
image coordinates the left-to-right state at (r, c) depends on (r, c - 1) and (r - 1, c),
so by induction on everything up and to the left, the rectangle rows <= r, columns <= c.
Padding carries no state: positions outside the image are never computed (zero, like a
convolution's zero padding).

The right-to-left direction is the same LSTM run on the horizontally flipped map: its state
at (r, c) depends on (r, c + 1) and (r - 1, c), the rectangle rows <= r, columns >= c.
That includes pixels right of (r, c) in row r, which come later in raster order (the
features at (r, c + 1) hold pixel (r, c), the very one predicted). So its output is moved
down one row before the two directions are added: (r, c) receives the right-to-left state
of (r - 1, c), which sees rows <= r - 1 only. The states the two terms at (r, c) depend on:

    left-to-right at (r, c)      right-to-left of (r - 1, c)      together
        L L L L . . .                . . . R R R R                    o o o o o o o
        L L L L . . .                . . . R R R R                    o o o o o o o
        L L L X . . .                . . . X . . .                    o o o X . . .

So every layer sees the whole context but one pixel: the last of the row above, (r - 1,
W - 1). The mask-A layer, which reaches p = first_kernel // 2 columns, puts it into
features no earlier than (r, W - 1 - p); only the left-to-right direction reaches those,
and only when c >= W - 1 - p (the same holds for the paper's layout: same first layer,
same shift). In the drawing above it lies outside the window: (11, 27).

Fast sampling (`fast_stepper`). The recurrences carry over to pixel-by-pixel generation:
  - Row LSTM: when row r starts, the state-to-state term of row r - 1 is computed for the
    whole row in every layer; each pixel then adds its input-to-state term (two taps) at
    one position and runs one LSTM cell per layer.
  - Diagonal BiLSTM: the left-to-right state at (r, c) needs (r, c - 1) and (r - 1, c), both
    known by then: one cell per layer and pixel. The right-to-left state of row r - 1 needs
    only rows <= r - 1, so when row r starts it is computed for the whole row (right to
    left) in every layer.
  - The first 7x7 mask-A layer reuses PixelCNN's cached convolution.
Each pixel thus costs one step per layer (and the Diagonal BiLSTM one more, amortized, for
the right-to-left row), and the logits match the parallel pass up to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import PixelStepper, register
from .causal import CachedConv, CachedStepper, CausalModel, MaskedConv2d, as_matmul, horizontal_mask, pixelcnn_mask


# --- skewing (Diagonal BiLSTM) ---------------------------------------------------------------

def skew(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H, W + H - 1): row i shifted right by i, zeros elsewhere.

    Done with one pad and two reshapes: pad each row to length W + H, flatten, and read the
    flat sequence back with rows one shorter (W + H - 1); each row then starts one place
    further right than the one above, and what fills the gaps is the padding.
    """
    n, c, h, w = x.shape
    flat = F.pad(x, (0, h)).flatten(2)                    # (N, C, H * (W + H))
    return flat[:, :, :h * (w + h - 1)].view(n, c, h, w + h - 1)


def unskew(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W + H - 1) -> (N, C, H, W): the inverse of `skew`."""
    n, c, h, skewed_width = x.shape
    w = skewed_width - h + 1
    flat = F.pad(x.flatten(2), (0, h))                    # (N, C, H * (W + H))
    return flat.view(n, c, h, w + h)[:, :, :, :w]


# --- the LSTM pieces -------------------------------------------------------------------------

def _lstm_cell(pre: torch.Tensor, c_prev: torch.Tensor, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-activations of the gates (i, f, o, g), stacked along `dim` -> new (hidden, cell)."""
    size = pre.shape[dim] // 4
    i, f, o = torch.sigmoid(pre.narrow(dim, 0, 3 * size)).chunk(3, dim)
    c = f * c_prev + i * torch.tanh(pre.narrow(dim, 3 * size, size))
    return o * torch.tanh(c), c


def _open_forget_gates(bias: torch.Tensor) -> None:
    """Start forget gates at sigmoid(1) ~ 0.73 so that state (and gradient) lasts across steps."""
    size = bias.shape[0] // 4
    with torch.no_grad():
        bias[size:2 * size] += 1.0


class _PixelRNNFamily(CausalModel):
    """The first 7x7 mask-A layer, `layers` recurrent layers of `layer_type`, the head."""

    kernel_keys = ("first_kernel",)                  # the recurrent layers have no kernel setting
    layer_type: type[nn.Module]

    def __init__(self, **config) -> None:
        super().__init__(**config)
        if self.config["layers"] < 1:
            raise ValueError(f"{self.name}: layers must be at least 1")
        c, k0 = self.config["channels"], self.config["first_kernel"]
        self.first = MaskedConv2d(self.grid_input.channels, c, pixelcnn_mask(k0, "A"), (k0 // 2, k0 // 2))
        self.layers = nn.ModuleList(self.layer_type(c) for _ in range(self.config["layers"]))

    def features_to_logits(self, features: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.first(features)                     # (N, C, H, W)
        for layer in self.layers:
            h = layer(h)
        return self._head(h).unsqueeze(2)            # (N, K, 1, H, W)


# --- Row LSTM --------------------------------------------------------------------------------

class RowLSTMLayer(nn.Module):
    """One Row LSTM layer with its residual connection: x + 1x1(h), h the LSTM's hidden state."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # The 1x3 type-B mask keeps columns c - 1 and c: stored as a 1x2 kernel, anchor on the right.
        self.input_to_state = MaskedConv2d(channels, 4 * channels, horizontal_mask(3, "B"), (0, 1))
        self.state_to_state = nn.Conv1d(channels, 4 * channels, 3, padding=1, bias=False)
        self.residual = nn.Conv2d(channels, channels, 1)
        _open_forget_gates(self.input_to_state.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = x.shape
        gates = self.input_to_state(x)                # (N, 4C, H, W): every row at once
        h = c = x.new_zeros(n, channels, width)       # the state above row 0
        rows = []
        # unbind, not gates[:, :, r]: the backward of each index would be a whole-map tensor
        for row_gates in gates.unbind(2):             # (N, 4C, W)
            h, c = _lstm_cell(row_gates + self.state_to_state(h), c)         # (N, C, W) each
            rows.append(h)
        return x + self.residual(torch.stack(rows, dim=2))


@register
class RowLSTM(_PixelRNNFamily):
    """PixelRNN Row LSTM: row-by-row LSTM layers with a triangular receptive field."""

    name = "row_lstm"
    description = "PixelRNN Row LSTM"
    # Sized for CPU training (measured training times are in trained/README.md).
    defaults = {"channels": 32, "layers": 2, "first_kernel": 7, "output": "bernoulli", "num_codes": 0,
                "data_shape": [1, 28, 28]}
    layer_type = RowLSTMLayer

    def fast_stepper(self, n: int, y: torch.Tensor | None = None) -> PixelStepper:
        return _RowLSTMStepper(self, n)


# --- Diagonal BiLSTM -------------------------------------------------------------------------

class DiagonalLSTM(nn.Module):
    """One direction of a Diagonal BiLSTM: left to right, in image coordinates in and out.

    The state at (r, c) comes from (r, c - 1) (cell and hidden) and (r - 1, c) (hidden).
    (Running both directions in one loop, as a grouped convolution, measured slower on a CPU.)
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.input_to_state = nn.Conv2d(channels, 4 * channels, 1)
        # 2x1 over the previous skewed column: tap 0 the row above, tap 1 the same row.
        self.state_to_state = nn.Conv1d(channels, 4 * channels, 2, bias=False)
        _open_forget_gates(self.input_to_state.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = x.shape
        # A 1x1 convolution commutes with skewing: skew the gates, not the input.
        gates = skew(self.input_to_state(x))          # (N, 4C, H, W + H - 1)
        h = c = x.new_zeros(n, channels, height)      # the previous column's state
        columns = []
        # unbind, not gates[..., j]: the backward of each index would be a whole-map tensor
        for j, column_gates in enumerate(gates.unbind(3)):          # (N, 4C, H)
            lo, hi = max(0, j - width + 1), min(height, j + 1)      # rows of column j inside the image
            # rows lo - 1 .. hi - 1 of the previous column (a zero row above the top)
            recurrent = self.state_to_state(F.pad(h, (1, 0))[:, :, lo:hi + 1])   # (N, 4C, hi - lo)
            h_in, c_in = _lstm_cell(column_gates[:, :, lo:hi] + recurrent, c[:, :, lo:hi])
            h, c = F.pad(h_in, (lo, height - hi)), F.pad(c_in, (lo, height - hi))
            columns.append(h)
        return unskew(torch.stack(columns, dim=3))    # (N, C, H, W)


class DiagonalBiLSTMLayer(nn.Module):
    """Both directions, the right-to-left one moved down a row, summed; then the residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.left_to_right = DiagonalLSTM(channels)
        self.right_to_left = DiagonalLSTM(channels)
        self.residual = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = self.left_to_right(x)
        right = self.right_to_left(x.flip(3)).flip(3)         # right to left: mirror, scan, mirror back
        right = F.pad(right, (0, 0, 1, 0))[:, :, :-1]         # row r now holds row r - 1
        return x + self.residual(left + right)


@register
class DiagonalBiLSTM(_PixelRNNFamily):
    """PixelRNN Diagonal BiLSTM: every layer sees the whole context (bar one pixel, see above)."""

    name = "diagonal_bilstm"
    description = "PixelRNN Diagonal BiLSTM"
    # Sized for CPU training: 55 sequential column steps per direction make it the slowest
    # model per parameter (measured training times are in trained/README.md).
    defaults = {"channels": 16, "layers": 1, "first_kernel": 7, "output": "bernoulli", "num_codes": 0,
                "data_shape": [1, 28, 28]}
    layer_type = DiagonalBiLSTMLayer

    def fast_stepper(self, n: int, y: torch.Tensor | None = None) -> PixelStepper:
        return _DiagonalStepper(self, n)


# --- fast steppers ---------------------------------------------------------------------------

def _recurrent(conv: nn.Conv1d) -> torch.Tensor:
    """A Diagonal LSTM's 2x1 state-to-state kernel as one (2C, 4C) matrix over [above, beside]."""
    w = conv.weight.detach()                          # (4C, C, 2)
    return torch.cat([w[:, :, 0], w[:, :, 1]], dim=1).t().contiguous()


class _PixelRNNStepper(CachedStepper):
    """What both steppers share: the image buffer, the first mask-A layer and the head.

    A subclass keeps the recurrent state: `start_row` when a row starts, `layer_at` for one
    layer at one pixel (features (N, C) in, the layer's output (N, C) out).
    """

    def __init__(self, model: _PixelRNNFamily, n: int) -> None:
        super().__init__(model, n, model.config["first_kernel"] // 2)
        self.layers = model.layers
        self.channels = model.config["channels"]
        self.first = CachedConv(model.first)
        # Along the current row, per column: the first layer's rows-above part (N, C) and its
        # anchor-row window over the image (see CachedConv.pixel_windows).
        self.first_above: list[torch.Tensor] = []
        self.first_windows: list[torch.Tensor] = []

    def zeros(self, *shape: int) -> torch.Tensor:
        return torch.zeros(self.n, *shape, **self._like)

    def start_row(self, row: int) -> None:
        raise NotImplementedError

    def layer_at(self, i: int, x: torch.Tensor, col: int) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def logits_at(self, x: torch.Tensor, row: int, col: int) -> torch.Tensor:
        self.write_previous_pixel(x, row, col)
        if col == 0:
            self.first_above = list(self.first.rows_above(self.image, row, self.width, self.pad).unbind(1))
            self.first_windows = self.first.pixel_windows(self.image[:, row + self.pad], self.width, self.pad)
            self.start_row(row)
        h = torch.addmm(self.first_above[col], self.first_windows[col], self.first.current)           # (N, C)
        for i in range(len(self.layers)):
            h = self.layer_at(i, h, col)
        return self.head(h)                                                                          # (N, K)


class _RowLSTMStepper(_PixelRNNStepper):
    """Per layer: the layer's input along the current row (for the two input taps), and the
    hidden and cell states of the row above and of the current row, each (N, W, C)."""

    @torch.no_grad()
    def __init__(self, model: RowLSTM, n: int) -> None:
        super().__init__(model, n)
        c, w, layers = self.channels, self.width, len(self.layers)
        self.input_to_state = [CachedConv(layer.input_to_state) for layer in self.layers]
        self.residual = [as_matmul(layer.residual) for layer in self.layers]
        inputs = [self.zeros(w + 2, c) for _ in range(layers)]   # padded by 1: column c at c + 1
        # Per layer, per column: where the input goes, and the input-to-state taps over it.
        self.input_slots = [list(row[:, 1:w + 1].unbind(1)) for row in inputs]
        self.input_windows = [conv.pixel_windows(row, w, 1) for conv, row in zip(self.input_to_state, inputs)]
        self.above = [(self.zeros(w, c), self.zeros(w, c)) for _ in range(layers)]   # (h, cell) of row - 1
        self.current = [(self.zeros(w, c), self.zeros(w, c)) for _ in range(layers)]
        self.row_terms: list[torch.Tensor] = []       # per layer, (N, W, 4C)

    def start_row(self, row: int) -> None:
        if row > 0:  # the finished row becomes the row above; its old buffers get overwritten
            self.above, self.current = self.current, self.above
        self.row_terms = [layer.state_to_state(h.transpose(1, 2)).transpose(1, 2) + conv.bias
                          for layer, conv, (h, _) in zip(self.layers, self.input_to_state, self.above)]

    def layer_at(self, i: int, x: torch.Tensor, col: int) -> torch.Tensor:
        self.input_slots[i][col].copy_(x)
        pre = torch.addmm(self.row_terms[i][:, col], self.input_windows[i][col], self.input_to_state[i].current)   # (N, 4C)
        h, c = _lstm_cell(pre, self.above[i][1][:, col])
        self.current[i][0][:, col], self.current[i][1][:, col] = h, c
        weight, bias = self.residual[i]
        return x + torch.addmm(bias, h, weight)


class _DiagonalStepper(_PixelRNNStepper):
    """Per layer: the layer's input on the row above and on this row, (N, W, C) each; the
    left-to-right hidden state on both rows and the running (hidden, cell) of the pixel to
    the left; and the right-to-left hidden state of the row above, which this row adds."""

    @torch.no_grad()
    def __init__(self, model: DiagonalBiLSTM, n: int) -> None:
        super().__init__(model, n)
        c, w, layers = self.channels, self.width, len(self.layers)
        # Left to right, one product per pixel: [input, hidden above, hidden left] @ (3C, 4C).
        self.lr_weights = []
        for layer in self.layers:
            weight, bias = as_matmul(layer.left_to_right.input_to_state)
            self.lr_weights.append((torch.cat([weight, _recurrent(layer.left_to_right.state_to_state)]), bias))
        self.rl_input = [as_matmul(layer.right_to_left.input_to_state) for layer in self.layers]
        self.rl_recurrent = [_recurrent(layer.right_to_left.state_to_state) for layer in self.layers]
        self.residual = [as_matmul(layer.residual) for layer in self.layers]
        self.inputs = [[self.zeros(w, c), self.zeros(w, c)] for _ in range(layers)]      # [above, current]
        self.lr_hidden = [[self.zeros(w, c), self.zeros(w, c)] for _ in range(layers)]   # [above, current]
        self.lr_left = [(self.zeros(c), self.zeros(c)) for _ in range(layers)]           # (h, cell) at col - 1
        self.rl_hidden = [self.zeros(w, c) for _ in range(layers)]                       # of row - 1

    def start_row(self, row: int) -> None:
        for i in range(len(self.layers)):
            self.lr_left[i] = (self.zeros(self.channels), self.zeros(self.channels))
            if row == 0:  # above row 0 every state is zero, as the buffers start
                continue
            self.inputs[i].reverse()
            self.lr_hidden[i].reverse()
            self.rl_hidden[i] = self._right_to_left(i, self.inputs[i][0], self.rl_hidden[i])

    def _right_to_left(self, i: int, inputs: torch.Tensor, hidden_above: torch.Tensor) -> torch.Tensor:
        """The right-to-left hidden state along a finished row: (N, W, C), from its inputs and
        the row above's state (both (N, W, C))."""
        weight, bias = self.rl_input[i]
        gates = torch.addmm(bias, inputs.reshape(-1, self.channels), weight).view(self.n, self.width, -1)
        h = c = self.zeros(self.channels)
        out = torch.empty_like(hidden_above)
        for col in reversed(range(self.width)):
            pre = torch.addmm(gates[:, col], torch.cat([hidden_above[:, col], h], dim=1), self.rl_recurrent[i])
            h, c = _lstm_cell(pre, c)
            out[:, col] = h
        return out

    def layer_at(self, i: int, x: torch.Tensor, col: int) -> torch.Tensor:
        self.inputs[i][1][:, col] = x
        above, current = self.lr_hidden[i]
        h_left, c_left = self.lr_left[i]
        weight, bias = self.lr_weights[i]
        h, c = _lstm_cell(torch.addmm(bias, torch.cat([x, above[:, col], h_left], dim=1), weight), c_left)
        current[:, col] = h
        self.lr_left[i] = (h, c)
        res_weight, res_bias = self.residual[i]
        return x + torch.addmm(res_bias, h + self.rl_hidden[i][:, col], res_weight)
