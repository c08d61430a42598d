"""Hosting: the ZeroGPU decorator and its stand-in, heavy work on a chosen device, the data
download (test split only, once, cached), the package and the Space's pins."""

from __future__ import annotations

import hashlib
import importlib
import io
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest
import torch
from packaging.markers import default_environment
from packaging.requirements import Requirement

from explorer import data, gpu, heavy, latent
from explorer.models import build
from tests.helpers import REPO, TINY, TINY_AUTOREGRESSIVE, TINY_GAN, build_wheel, idx_bytes

# ZeroGPU's supported versions (https://huggingface.co/docs/hub/spaces-zerogpu, "Supported
# Versions"): Python as listed; torch as listed when last read, plus 2.12.1 and 2.13.0, which
# the list held at the reading (the page says "almost all versions from 2.8.0 to latest").
ZEROGPU_PYTHON = {"3.12.12", "3.10.13"}
ZEROGPU_TORCH = {"2.8.0", "2.9.1", "2.10.0", "2.11.0", "2.12.1", "2.13.0"}


# ------------------------------------------------------------------ the ZeroGPU decorator


@pytest.fixture
def reload_gpu(monkeypatch):
    """Re-import explorer.gpu with `spaces` replaced (monkeypatch puts sys.modules back after)."""
    def reload(spaces_module):
        monkeypatch.setitem(sys.modules, "spaces", spaces_module)
        return importlib.reload(gpu)
    yield reload
    monkeypatch.undo()
    importlib.reload(gpu)
    importlib.reload(heavy)


def test_without_spaces_heavy_leaves_functions_as_they_are(reload_gpu):
    shim = reload_gpu(None)  # None in sys.modules: `import spaces` raises ImportError
    assert shim.spaces is None

    def work(x):
        return x + 1

    assert shim.heavy(20)(work) is work


class Refused(Exception):
    """What the `spaces` package raises when it lends no GPU: a Gradio error titled "ZeroGPU ..."."""

    def __init__(self, message: str, title: str) -> None:
        super().__init__(message)
        self.title = title


@pytest.fixture
def fake_spaces(reload_gpu):
    """explorer.gpu over a stand-in `spaces` whose GPU call runs `gpu_call(fn, *args, **kwargs)`;
    yields (module, asked durations, the GPU calls made, the fallback sentences told)."""
    asked, calls, told = [], [], []
    behaviour = {"gpu_call": lambda fn, *a, **k: fn(*a, **k)}

    def GPU(*, duration):
        asked.append(duration)

        def decorate(fn):
            def on_gpu(*args, **kwargs):
                calls.append(kwargs.get("device"))
                return behaviour["gpu_call"](fn, *args, **kwargs)
            return on_gpu
        return decorate

    fake = types.ModuleType("spaces")
    fake.GPU = GPU
    shim = reload_gpu(fake)
    shim.on_fallback = told.append
    yield shim, asked, calls, told, behaviour


def test_with_spaces_heavy_asks_for_the_duration_and_runs_on_the_gpu(fake_spaces):
    shim, asked, calls, told, _ = fake_spaces

    def work(x, device=None):
        return (x, str(device))

    wrapped = shim.heavy(30)(work)
    assert asked == [30] and callable(wrapped.on_zerogpu)
    assert wrapped(1) == (1, "None") and calls == [None] and not told
    # What the app marks heavy: a GAN's inversion and the likelihood scoring, nothing else.
    asked.clear()
    marked = importlib.reload(heavy)
    assert asked == [heavy.INVERT_SECONDS, heavy.SCORE_SECONDS]
    assert hasattr(marked.invert, "on_zerogpu") and hasattr(marked.likelihoods, "on_zerogpu")
    assert callable(marked.encode) and not hasattr(marked.encode, "on_zerogpu")


def test_a_call_that_names_the_cpu_never_asks_zerogpu(fake_spaces):
    """The page's first values and the warm-up run outside any visitor's request: they name the
    CPU, and the scheduler is not asked (outside a request it refuses, and nobody would pay)."""
    shim, _, calls, told, _ = fake_spaces
    wrapped = shim.heavy(30)(lambda x, device=None: (x, str(device)))
    assert wrapped(2, device="cpu") == (2, "cpu") and calls == [] and not told
    assert wrapped(3, device=torch.device("cpu")) == (3, "cpu") and calls == []


@pytest.mark.parametrize("error, why", [
    (Refused("You have exceeded your free ZeroGPU quota", "ZeroGPU quota exceeded"), "quota is spent"),
    (Refused("No GPU was available after 60s", "ZeroGPU queue timeout"), "queue is full"),
    (Refused("No GPU is currently available for you", "ZeroGPU client error"), "service said no"),
])
def test_a_refused_gpu_runs_the_work_on_the_cpu_and_says_why_in_one_sentence(fake_spaces, error, why):
    shim, _, calls, told, behaviour = fake_spaces

    def refuse(fn, *a, **k):
        raise error
    behaviour["gpu_call"] = refuse
    wrapped = shim.heavy(30)(lambda x, device=None: (x, str(device)))
    assert wrapped(4) == (4, "cpu") and calls == [None]
    assert len(told) == 1 and why in told[0] and told[0].endswith("ran on the server's CPU instead.")


def test_an_unreachable_scheduler_is_a_refusal_too():
    httpx = pytest.importorskip("httpx")
    assert gpu.refusal_reason(httpx.ConnectError("[Errno 111] Connection refused")) == \
        "the GPU service could not be reached"


def test_an_error_of_the_work_itself_is_not_hidden_by_a_cpu_retry(fake_spaces):
    shim, _, calls, told, behaviour = fake_spaces
    ran = []

    def work(x, device=None):
        ran.append(str(device))
        raise ValueError("bad image")
    wrapped = shim.heavy(30)(work)
    with pytest.raises(ValueError, match="bad image"):
        wrapped(5)
    assert ran == ["None"] and not told  # not run again on the CPU


def test_gan_inversion_uses_adam_written_out_and_equal_to_torch_optim():
    """Inversion's optimiser touches no CUDA (torch.optim's step asks the accelerator, which
    ZeroGPU refuses outside a GPU call), and steps exactly as torch.optim.Adam does."""
    from explorer.models.gan import Adam

    torch.manual_seed(0)
    ours = torch.randn(6, 5, requires_grad=True)
    theirs = ours.detach().clone().requires_grad_(True)
    reference, written_out = torch.optim.Adam([theirs], lr=0.05), Adam(ours, lr=0.05)
    for _ in range(40):
        for z, opt in ((ours, written_out), (theirs, reference)):
            loss = (z.sin() * torch.arange(5.0)).pow(2).sum() + z.pow(2).sum()
            z.grad = None
            loss.backward()
            opt.step()
    assert torch.equal(ours, theirs)
    source = (REPO / "explorer" / "models" / "gan.py").read_text()
    assert "torch.optim" not in source.split("class Adam")[0].split("def invert")[1]


def test_the_installed_spaces_package_is_effect_free_off_zerogpu(monkeypatch):
    spaces = pytest.importorskip("spaces")
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert spaces.GPU(duration=5)(len) is len


def test_work_device_and_placement():
    assert gpu.work_device("cpu") == torch.device("cpu")
    assert gpu.work_device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build("vae", {**TINY, "latent_dim": 3}).eval()
    assert gpu.placed(model, torch.device("cpu")) is model  # already there: no copy
    # Elsewhere: a copy there, and the shared model stays where it was (other requests use it).
    moved = gpu.placed(model, torch.device("meta"))
    assert moved is not model and next(moved.parameters()).device.type == "meta"
    assert next(model.parameters()).device.type == "cpu"


# ------------------------------------------------------------------ heavy work on a device


def devices() -> list[str]:
    return ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.mark.parametrize("device", devices())
def test_heavy_encode_matches_the_library_on_each_device(device):
    torch.manual_seed(0)
    x = torch.rand(2, 1, 28, 28)
    for name, cfg, label in (("vae", {**TINY, "latent_dim": 3}, None), ("cvae", {**TINY, "latent_dim": 3}, 4),
                             ("dcgan", TINY_GAN, None)):
        model = build(name, cfg).eval()
        codes, errors = heavy.encode(model, x, label, device=device)
        want = latent.encode(model, x, label)
        assert codes.device.type == "cpu" and errors.shape == (2,)
        assert torch.allclose(codes, want, atol=1e-3 if device == "cuda" else 0)
        assert torch.allclose(errors, latent.reconstruction_error(model, x, want, label), atol=1e-4)
        assert next(model.parameters()).device.type == "cpu"
    # The GAN's inversion is the same work, marked heavy (a GPU on ZeroGPU).
    gan = build("dcgan", TINY_GAN).eval()
    assert torch.allclose(heavy.invert(gan, x, device=device)[0], latent.encode(gan, x), atol=1e-3)


@pytest.mark.parametrize("device", devices())
def test_heavy_likelihoods_match_the_models_on_each_device(device):
    torch.manual_seed(0)
    x = torch.bernoulli(torch.full((1, 1, 28, 28), 0.3))
    name, cfg = TINY_AUTOREGRESSIVE["mnist-pixelcnn"]
    pixelcnn = build(name, cfg).eval()
    vae = build("vae", {**TINY, "latent_dim": 3}).eval()
    maps, bounds = heavy.likelihoods([(pixelcnn, x)], [(vae, x)], vae_samples=10, device=device)
    assert maps[0].shape == (1, 28, 28) and maps[0].device.type == "cpu"
    with torch.no_grad():
        assert float(maps[0].sum()) == pytest.approx(-float(pixelcnn.log_prob(x)), rel=1e-4)
    assert len(bounds) == 1 and bounds[0] > 0


# ------------------------------------------------------------------ data: the test split alone


@pytest.fixture
def mirror(monkeypatch, tmp_path):
    """A fake mirror serving fake MNIST files (with their MD5 sums) and recording requests."""
    rng = __import__("numpy").random.default_rng(0)
    files = {}
    for prefix, n in (("train", 20), ("t10k", 8)):
        files[f"{prefix}-images-idx3-ubyte.gz"] = idx_bytes(rng.integers(0, 255, (n, 28, 28)))
        files[f"{prefix}-labels-idx1-ubyte.gz"] = idx_bytes(rng.integers(0, 10, n))
    asked: list[str] = []
    state = {"online": True}

    def urlopen(url, timeout):
        asked.append(url)
        if not state["online"]:
            raise OSError("<urlopen error [Errno -2] Name or service not known>")
        return io.BytesIO(files[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(data.urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(data, "MD5", {"mnist": {k: hashlib.md5(v).hexdigest() for k, v in files.items()}})
    monkeypatch.setattr(data, "MIRRORS", {"mnist": ["https://mirror.example/mnist/"]})
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    return types.SimpleNamespace(asked=asked, state=state, cache=tmp_path / "cache" / "mnist")


def test_download_fetches_only_the_split_asked_for_once(mirror):
    split = data.load_split("mnist", "test")
    assert split.images.shape == (8, 28, 28) and split.labels.shape == (8,)
    assert [u.rsplit("/", 1)[1] for u in mirror.asked] == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert sorted(p.name for p in mirror.cache.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    mirror.state["online"] = False  # cached: no network needed again
    assert torch.equal(data.load_split("mnist", "test").images, split.images) and len(mirror.asked) == 2


def test_a_damaged_cached_file_is_fetched_again(mirror):
    data.load_split("mnist", "test")
    (mirror.cache / "t10k-labels-idx1-ubyte.gz").write_bytes(b"half a file")
    assert len(data.load_split("mnist", "test")) == 8 and len(mirror.asked) == 3


def test_without_a_network_the_error_is_short_for_the_page_and_full_for_the_log(mirror):
    mirror.state["online"] = False
    with pytest.raises(data.DataError) as caught:
        data.load_split("mnist", "test")
    assert "Errno" in str(caught.value) and "mirror.example" in str(caught.value)  # the log's details
    brief = caught.value.brief
    assert brief == "they could not be downloaded (no internet connection?)"
    assert not mirror.cache.exists() or not any(mirror.cache.iterdir())


def test_a_download_with_the_wrong_checksum_is_refused(mirror, monkeypatch):
    monkeypatch.setitem(data.MD5["mnist"], "t10k-images-idx3-ubyte.gz", "0" * 32)
    with pytest.raises(data.DataError, match="wrong MD5"):
        data.load_split("mnist", "test")


def test_the_checksums_match_the_official_mnist_test_files():
    """The dev machines' MNIST test files are the official ones (their README says so; the
    train images and the Fashion-MNIST gzips there were rebuilt or repacked)."""
    folder = REPO.parent / "shared" / "data" / "mnist"
    if not folder.is_dir():
        pytest.skip(f"real MNIST not found at {folder} (only on the dev machines)")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert hashlib.md5((folder / name).read_bytes()).hexdigest() == data.MD5["mnist"][name]


# ------------------------------------------------------------------ the package and the Space


def front_matter() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    assert text.startswith("---\n")
    block = text.split("---\n")[1]
    return {k.strip(): v.strip().strip('"') for k, v in (line.split(":", 1) for line in block.splitlines())}


def pins(python: str) -> dict[str, str]:
    """requirements.txt as pip sees it on that Python: name -> pinned version."""
    env = {**default_environment(), "python_version": ".".join(python.split(".")[:2]),
           "python_full_version": python}
    out = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(env):
                assert req.name not in out, f"{req.name} pinned twice for Python {python}"
                (spec,) = req.specifier
                assert spec.operator == "==", line
                out[req.name] = spec.version
    return out


def test_the_space_runs_a_python_and_torch_that_zerogpu_accepts():
    meta = front_matter()
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["license"] == "mit"
    assert meta["python_version"] in ZEROGPU_PYTHON
    space = pins(meta["python_version"])
    assert space["torch"] in ZEROGPU_TORCH
    assert space["gradio"] == meta["sdk_version"] and "spaces" in space
    assert "torchvision" not in space  # nothing imports it: the data download needs no torchvision


def test_python_3_11_here_and_in_ci_keeps_the_torch_on_disk():
    here = pins("3.11.7")
    assert here["torch"] == "2.14.1"
    assert {k: v for k, v in here.items() if k != "torch"} == {k: v for k, v in pins("3.12.12").items()
                                                                if k != "torch"}


def test_app_py_imports_spaces_before_torch_and_gradio():
    lines = [ln for ln in (REPO / "app.py").read_text().splitlines() if ln.startswith(("import ", "from "))]
    first = [ln for ln in lines if not ln.startswith("from __future__")][0]
    assert first.startswith("import explorer.gpu")
    gpu_source = (REPO / "explorer" / "gpu.py").read_text()
    assert gpu_source.index("import spaces") < gpu_source.index("import torch")
    assert not any(ln.startswith(("import torch", "import gradio", "from explorer"))
                   for ln in (REPO / "explorer" / "__init__.py").read_text().splitlines())


def test_license_lfs_attributes_and_model_card_metadata():
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    assert "*.safetensors filter=lfs diff=lfs merge=lfs -text" in (REPO / ".gitattributes").read_text().splitlines()
    assert "*.png filter=lfs diff=lfs merge=lfs -text" in (REPO / ".gitattributes").read_text().splitlines()
    card = (REPO / "trained" / "README.md").read_text()
    assert card.startswith("---\n")
    header = card.split("---\n")[1]
    for line in ("license: mit", "library_name: pytorch", "- ylecun/mnist", "- zalando-datasets/fashion_mnist"):
        assert line in header.splitlines()


def test_the_package_builds_with_the_library_the_cli_the_checkpoints_and_the_pins(tmp_path):
    """What `pip install .` installs: explorer/, train/, the shipped checkpoints (package
    `trained`, data only) and the `latent-explorer` command, with requirements.txt's pins;
    nothing generated (Gradio's stubs, bytecode, resume states)."""
    wheel = build_wheel(tmp_path, dirty=True)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
        scripts = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "explorer/ui/demo.py" in names and "train/__main__.py" in names and "explorer/gpu.py" in names
    shipped = sorted(p.name for p in (REPO / "trained").glob("*.safetensors"))
    assert sorted(n.split("/")[1] for n in names if n.startswith("trained/") and n.endswith(".safetensors")) == shipped
    assert "trained/README.md" in names and "trained/__init__.py" in names
    assert not any(n.endswith((".pyi", ".pyc", ".resume.safetensors")) for n in names)
    assert not any(n.startswith(("tests/", "benchmarks/", "runs/")) for n in names)
    assert "latent-explorer = explorer.ui.server:main" in scripts
    assert 'Requires-Dist: torch==2.14.1; python_version == "3.11"' in metadata
    assert 'Requires-Dist: torch==2.13.0; python_version != "3.11"' in metadata
    assert "License-Expression: MIT" in metadata


def test_every_binary_file_git_tracks_goes_through_lfs():
    """A push to the Hub refuses plain binary files: each one git tracks (NUL bytes or not
    UTF-8) must be covered by an LFS attribute (.gitattributes)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    binary = []
    for name in filter(None, tracked.decode().split("\0")):
        raw = (REPO / name).read_bytes() if (REPO / name).is_file() else b""
        try:
            raw.decode("utf-8")
            is_binary = b"\0" in raw
        except UnicodeDecodeError:
            is_binary = True
        if is_binary:
            binary.append(name)
    assert binary  # the checkpoints, at least
    attrs = subprocess.run(["git", "check-attr", "filter", "--", *binary], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    not_lfs = [line.split(":")[0] for line in attrs if not line.endswith(": filter: lfs")]
    assert not not_lfs, f"binary files outside LFS: {not_lfs}"
