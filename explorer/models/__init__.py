"""Model families; importing this package registers every model under its short name."""

from . import autoencoder  # noqa: F401  (registers ae, vae, cvae)
from . import classifier  # noqa: F401  (registers classifier)
from . import gan  # noqa: F401  (registers dcgan, wgan_gp, gan)
from . import pixelcnn  # noqa: F401  (registers pixelcnn, gated_pixelcnn)
from . import pixelrnn  # noqa: F401  (registers row_lstm, diagonal_bilstm)
from . import vqvae  # noqa: F401  (registers vqvae)
from .base import REGISTRY, GenerativeModel, LatentModel, build, register

__all__ = ["REGISTRY", "GenerativeModel", "LatentModel", "build", "register"]
