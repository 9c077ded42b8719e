"""The CUDA kernel ``skmpsae/_pursuit/kernels/mp_gram.cu``, verified without a GPU.

1. nvcc compiles the source for sm_80 and sm_90, and the PTX has no fused
   multiply-add (skipped when nvcc is absent).
2. The same source, compiled by g++ against ``cuda_emulation/cuda_emu.h``
   (threads, barriers, shared memory and warp shuffles in C++), runs on the CPU
   and must give exactly the NumPy reference's selections and coefficients.
3. The Python wrapper (``_pursuit/_cupy.py``) runs against a stand-in for
   CuPy whose arrays live on the host and whose RawModule launches the
   emulated kernel: argument types, shapes, chunking, the per-device module
   cache and the returned array types are checked through ``mp_encode``.
The real kernel on a GPU is tested in ``test_gpu.py``.
"""

import ctypes
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from skmpsae import mp_encode
from skmpsae._pursuit import _core, _cupy, _numpy, _plan
from skmpsae._pursuit._core import densify, pursue

KERNEL = Path(_cupy.KERNEL_FILE)
EMULATION = Path(__file__).parent / "cuda_emulation"


# --------------------------------------------------------------------------- nvcc


@pytest.fixture(scope="module")
def nvcc():
    path = shutil.which("nvcc")
    if path is None:
        pytest.skip("nvcc is not on PATH (install the CUDA toolkit to check the kernel compiles)")
    return path


def test_source_needs_no_header():
    # NVRTC (CuPy's RawModule) compiles the source alone, without the C++ library.
    assert "#include" not in KERNEL.read_text()


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_nvcc_compiles_without_fma(nvcc, arch, tmp_path):
    cubin, ptx = tmp_path / "k.cubin", tmp_path / "k.ptx"
    for flag, out in (("-cubin", cubin), ("--ptx", ptx)):
        subprocess.run([nvcc, f"-arch={arch}", "--Werror", "all-warnings", flag, "-o", str(out),
                        str(KERNEL)], check=True, capture_output=True, timeout=300)
    binary = cubin.read_bytes()
    for name in ("mp_gram_f32", "mp_gram_f64"):
        assert name.encode() in binary  # extern "C": RawModule finds them by name
    # Contraction into FMA would round c - a * g once instead of twice and break
    # parity with NumPy; the _rn intrinsics forbid it, and ptxas keeps .rn ops.
    pattern = r"\b(fma|mad|mul|sub|add)\.(rn\.)?(f32|f64)\b"
    instructions = set(re.findall(pattern, ptx.read_text()))
    assert not any(op in ("fma", "mad") for op, _, _ in instructions)
    # An operation without .rn is one ptxas may still fuse into an FMA.
    assert all(rn for op, rn, _ in instructions if op in ("mul", "sub", "add"))
    for op in ("mul", "sub", "add"):
        for width in ("f32", "f64"):
            assert (op, "rn.", width) in instructions


# --------------------------------------------------------------------------- emulation


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """The kernels compiled by g++ against the emulation header, as a shared library."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not on PATH (needed to run the CUDA kernel on the CPU)")
    lib = tmp_path_factory.mktemp("cuda_emu") / "libmpemu.so"
    subprocess.run(
        [gxx, "-std=c++20", "-O1", "-ffp-contract=off", "-pthread", "-shared", "-fPIC",
         "-Wall", "-include", str(EMULATION / "cuda_emu.h"), "-I", str(KERNEL.parent),
         str(EMULATION / "emu_launch.cpp"), "-o", str(lib)],
        check=True, capture_output=True, timeout=300,
    )
    cdll = ctypes.CDLL(str(lib))
    cdll.emu_launch.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint,
                                ctypes.POINTER(ctypes.c_void_p)]
    cdll.emu_launch.restype = ctypes.c_int
    return cdll


def emu_launch(lib, name, grid, block, args):
    """Launch like cuLaunchKernel: ``params[i]`` points to the i-th argument's value."""
    keep, pointers = [], []
    for arg in args:
        if isinstance(arg, np.ndarray):
            holder = ctypes.c_void_p(arg.ctypes.data)
            pointers.append(ctypes.addressof(holder))
        else:
            holder = np.array(arg)
            pointers.append(holder.ctypes.data)
        keep.append(holder)
    params = (ctypes.c_void_p * len(pointers))(*pointers)
    assert lib.emu_launch(name.encode(), grid, block, params) == 0


def run_kernel(lib, C, G, n_steps, positive, thresh, rsq, *, block=64, grid=None,
               write_codes=False, min_coef=0.0):
    """``(idx, coef, C after, rsq after)`` from the emulated kernel; inputs are not modified."""
    C = np.array(C, order="C")
    rsq = rsq.copy()
    n, k = C.shape
    idx = np.full((n, n_steps), -7, dtype=np.int64)
    coef = np.full((n, n_steps), np.nan, dtype=C.dtype)
    name = "mp_gram_f32" if C.dtype == np.float32 else "mp_gram_f64"
    i32 = np.int32
    emu_launch(lib, name, grid or n, block,
               (C, np.ascontiguousarray(G), i32(n), i32(k), i32(n_steps), i32(positive),
                i32(thresh.size > 0), thresh, rsq, idx, coef, i32(write_codes),
                C.dtype.type(min_coef)))
    return idx, coef, C, rsq


def reference(C, G, n_steps, positive, thresh, rsq, min_coef=0.0):
    """``(idx, coef, C after, rsq after)`` from the NumPy reference."""
    C, rsq = C.copy(), rsq.copy()
    idx = np.empty((C.shape[0], n_steps), dtype=np.int64)
    coef = np.empty((C.shape[0], n_steps), dtype=C.dtype)
    _numpy.gram_pursuit(C, G, n_steps, positive, thresh.copy(), rsq, idx, coef, min_coef)
    return idx, coef, C, rsq


def assert_same_bits(got, ref):
    """Equal arrays, down to the sign of zeros."""
    assert got.dtype == ref.dtype
    assert_array_equal(got, ref)
    assert_array_equal(np.signbit(got), np.signbit(ref))


def correlations(X, D, tol):
    """``C``, ``G`` and the tolerance arrays, computed as the NumPy core computes them."""
    C = np.ascontiguousarray(X @ D.T)
    G = np.ascontiguousarray(D @ D.T)
    empty = np.empty(0, dtype=X.dtype)
    if tol is None:
        return C, G, empty, empty
    rsq = np.einsum("ij,ij->i", X, X)
    return C, G, (tol * rsq).astype(X.dtype), rsq


def random_problem(n, n_features, n_components, dtype, seed):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_components, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((n, n_features)) + 0.3
    return X.astype(dtype), D.astype(dtype)


def check_against_reference(lib, C, G, n_steps, positive, thresh, rsq, write_codes=False,
                            min_coef=0.0, **launch):
    """Selections equal to the reference's, bit for bit, and so are the squared
    residual norms tracked for ``tol`` and the rows left in ``C``: the final
    correlations (each sample's stop leaves its row as the reference does), or
    with ``write_codes`` the dense codes."""
    idx, coef, C_after, rsq_after = run_kernel(lib, C, G, n_steps, positive, thresh, rsq,
                                               write_codes=write_codes, min_coef=min_coef,
                                               **launch)
    ref_idx, ref_coef, ref_C, ref_rsq = reference(C, G, n_steps, positive, thresh, rsq,
                                                  min_coef)
    assert_array_equal(idx, ref_idx)
    assert_same_bits(coef, ref_coef)
    assert_same_bits(rsq_after, ref_rsq)
    if write_codes:
        assert_same_bits(C_after + 0, densify(ref_idx, ref_coef, C.shape[1]) + 0)
    else:
        assert_same_bits(C_after, ref_C)
    return idx, coef


@pytest.mark.parametrize("n_components", [1, 63, 64, 65, 200, 257])
@pytest.mark.parametrize("tol", [None, 0.3])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_emulated_kernel_matches_reference(emulator, dtype, positive, tol, n_components):
    # Blocks of 64 threads: 63, 65, 200 and 257 leave part of the last pass
    # empty, 1 leaves 63 threads idle; 5 blocks stride over the 12 rows. Odd
    # sizes check the codes written over each row, even ones the correlations
    # left there.
    X, D = random_problem(12, 12, n_components, dtype, seed=n_components)
    C, G, thresh, rsq = correlations(X, D, tol)
    idx, coef = check_against_reference(emulator, C, G, 9, positive, thresh, rsq, block=64,
                                        grid=5, write_codes=n_components % 2 == 1)
    if tol is not None and n_components > 1:
        assert (coef[:, -1] == 0).any()  # some samples did stop at the tolerance


@pytest.mark.parametrize("tol", [0.0, 0.5])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_emulated_kernel_stops_when_residual_equals_tolerance(emulator, dtype, positive, tol):
    # Orthonormal atoms and exact data: the residual reaches tol * ||x||^2
    # exactly (row 0: 2 of 4 after two steps at tol=0.5; 0 once x is rebuilt
    # at tol=0), and the reference stops there (<=), before a further step.
    X = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0], [3.0, 0.0, 1.0, 1.0]], dtype)
    C, G, thresh, rsq = correlations(X, np.eye(4, dtype=dtype), tol)
    idx, coef = check_against_reference(emulator, C, G, 4, positive, thresh, rsq)
    steps = (coef != 0).sum(axis=1)
    assert_array_equal(steps, [2, 1, 1] if tol else [4, 2, 3])


@pytest.mark.parametrize("mode", ["residual", "coef", "both"])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_emulated_kernel_budget_modes(emulator, dtype, positive, mode):
    # The absolute residual stop (thresh filled with one level) and the
    # coefficient stop (min_coef), alone and together, as the core passes them.
    # 65 atoms leave part of the last pass of a 64-thread block empty.
    n_components = 65
    X, D = random_problem(12, 12, n_components, dtype, seed=n_components + 1)
    X *= np.linspace(0.2, 2.0, 12, dtype=dtype)[:, None]  # flat and textured samples
    C, G, _, _ = correlations(X, D, None)
    rsq = np.einsum("ij,ij->i", X, X)
    empty = np.empty(0, dtype=dtype)
    thresh = np.full(12, np.median(rsq) / 3, dtype=dtype) if mode != "coef" else empty
    rsq = rsq if mode != "coef" else empty
    min_coef = float(np.median(np.abs(C).max(axis=1)) / 4) if mode != "residual" else 0.0
    idx, coef = check_against_reference(emulator, C, G, 9, positive, thresh, rsq,
                                        min_coef=min_coef, block=64, grid=5,
                                        write_codes=mode == "coef")
    steps = (coef != 0).sum(axis=1)
    assert steps.min() < 9 and steps.max() > steps.min()  # budget moves between samples
    if min_coef:
        assert (np.abs(coef[coef != 0]) >= dtype(min_coef)).all()


@pytest.mark.parametrize("block, grid", [(32, 1), (96, 3), (256, 40)])
def test_emulated_kernel_any_launch_shape(emulator, block, grid):
    # Any number of warps, any grid (more blocks than rows, or one for all).
    X, D = random_problem(12, 10, 150, np.float64, seed=3)
    C, G, thresh, rsq = correlations(X, D, 0.05)
    check_against_reference(emulator, C, G, 7, False, thresh, rsq, block=block, grid=grid)


@pytest.mark.parametrize("tol", [None, 0.1])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_emulated_kernel_exact_ties(emulator, dtype, positive, tol, dyadic_problem):
    X, D, _ = dyadic_problem(16, 8, 131, seed=1)
    C, G, thresh, rsq = correlations(X.astype(dtype), D.astype(dtype), tol)
    assert (np.sort(C, axis=1)[:, -1] == np.sort(C, axis=1)[:, -2]).any()  # ties at the top
    for write_codes in (False, True):
        check_against_reference(emulator, C, G, 8, positive, thresh, rsq,
                                write_codes=write_codes)


@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
def test_emulated_kernel_duplicated_atoms_pick_lowest_index(emulator, positive):
    # Exact ties are built into C and G, not left to BLAS: a GEMM kernel may give
    # the same atom's products 1 ulp apart depending on where it sits (an
    # AVX-512 OpenBLAS edge column does).
    X, D = random_problem(12, 6, 70, np.float64, seed=5)
    C, G, thresh, rsq = correlations(X, D, None)
    copies = {10: 1.0, 41: 1.0, 69: 1.0, 50: -1.0}  # equal c at 3, 10, 41, 69; |c| at 50
    for j, sign in copies.items():
        C[:, j] = sign * C[:, 3]
        G[j, :] = sign * G[3, :]
        G[:, j] = sign * G[:, 3]
    assert_array_equal(G, G.T)
    idx, _ = check_against_reference(emulator, C, G, 6, positive, thresh, rsq)
    assert not np.isin(idx, [10, 41, 69]).any()
    assert (idx == 3).any()


def test_emulated_kernel_signed_zeros_and_stops(emulator):
    # Rows: all zeros; -0.0 before +0.0; all negative; one positive value
    # among zeros. Positive mode stops at once on the first three (coefficient
    # +0.0, index of the first maximum); signed mode keeps -0.0 as NumPy does.
    C = np.array([[0.0, 0.0, 0.0, 0.0],
                  [-0.0, 0.0, -0.0, 0.0],
                  [-1.0, -0.5, -2.0, -0.5],
                  [0.0, -0.0, 0.25, 0.0]])
    G = np.eye(4)
    empty = np.empty(0)
    for positive in (True, False):
        idx, coef = check_against_reference(emulator, C, G, 3, positive, empty, empty)
        assert_array_equal(idx[3], [2, 0, 0])
        assert_array_equal(idx[:, 0], [0, 0, 1 if positive else 2, 2])
    assert np.signbit(run_kernel(emulator, C, G, 3, False, empty, empty)[1][1, 0])


@pytest.mark.parametrize("n_components", [1, 3])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
def test_emulated_kernel_more_steps_than_atoms(emulator, n_components, positive):
    # Correlated atoms are picked again and again; coefficients accumulate.
    X, D = random_problem(10, 4, n_components, np.float64, seed=8)
    C, G, thresh, rsq = correlations(X, D, 1e-6)
    idx, _ = check_against_reference(emulator, C, G, 12, positive, thresh, rsq, block=32,
                                     write_codes=True)
    if n_components == 3:
        assert any(np.bincount(row).max() > 1 for row in idx)  # atoms picked again


def test_emulated_kernel_zero_steps(emulator):
    X, D = random_problem(5, 4, 9, np.float64, seed=0)
    C, G, thresh, rsq = correlations(X, D, None)
    idx, coef, codes, _ = run_kernel(emulator, C, G, 0, True, thresh, rsq, write_codes=True)
    assert idx.shape == (5, 0) and coef.shape == (5, 0)
    assert not codes.any()


# --------------------------------------------------------------------------- wrapper


class StandInArray(np.ndarray):
    """A host array that the wrapper under test takes for a CuPy array."""

    @property
    def device(self):
        return types.SimpleNamespace(id=StandInDevice.current)


def _dev(array):
    return np.asarray(array).view(StandInArray)


class StandInDevice:
    current = 0

    def __init__(self, device_id=None):
        self.id = StandInDevice.current if device_id is None else device_id

    def __enter__(self):
        self._previous, StandInDevice.current = StandInDevice.current, self.id
        return self

    def __exit__(self, *exc):
        StandInDevice.current = self._previous


def kernel_signatures():
    """``{name: [parameter type, ...]}`` of the source's extern "C" kernels."""
    text = KERNEL.read_text()
    out = {}
    for name, params in re.findall(r'extern "C" __global__ void (\w+)\(([^)]*)\)', text):
        out[name] = [" ".join(p.split()[:-1]).replace("const ", "") for p in params.split(",")]
    return out


_ARG_TYPES = {"float*": np.float32, "double*": np.float64, "long long*": np.int64}


class StandInKernel:
    def __init__(self, lib, name, launches):
        self.lib, self.name, self.launches = lib, name, launches

    def __call__(self, grid, block, args, **kwargs):
        # The arguments must be what the C signature says, C-contiguous, and
        # as large as the kernel reads: checked here, not trusted.
        signature = kernel_signatures()[self.name]
        assert len(args) == len(signature)
        for arg, ctype in zip(args, signature, strict=True):
            if ctype == "int":
                assert type(arg) is np.int32, (ctype, type(arg))
            elif ctype in ("float", "double"):  # a scalar of the kernel's float type
                assert type(arg) is _ARG_TYPES[ctype + "*"], (ctype, type(arg))
            else:
                assert isinstance(arg, StandInArray) and arg.dtype == _ARG_TYPES[ctype]
                assert arg.flags.c_contiguous
        C, G, n_rows, n_comp, n_steps = args[:5]
        thresh, rsq, idx, coef = args[7:11]
        assert C.shape == (n_rows, n_comp) and G.shape == (n_comp, n_comp)
        assert type(args[-1]) is C.dtype.type  # min_coef in the rows' precision
        assert idx.shape == coef.shape == (n_rows, n_steps)
        if args[6]:
            assert thresh.shape == rsq.shape == (n_rows,)
        assert block[0] % 32 == 0 and block[0] <= 1024
        self.launches.append((grid, block))
        emu_launch(self.lib, self.name, grid[0], block[0], args)


@pytest.fixture
def stand_in_cupy(emulator, monkeypatch):
    """A ``cupy`` module on the host, with the emulated kernel behind ``RawModule``."""
    cp = types.ModuleType("cupy")
    cp.builds, cp.launches = [], []

    class RawModule:
        def __init__(self, code, options=()):
            cp.builds.append((StandInDevice.current, code))

        def get_function(self, name):
            return StandInKernel(emulator, name, cp.launches)

    cp.ndarray = StandInArray
    cp.RawModule = RawModule
    cp.asarray = lambda a, dtype=None: _dev(np.asarray(a, dtype=dtype))
    cp.ascontiguousarray = lambda a, dtype=None: _dev(np.ascontiguousarray(a, dtype=dtype))
    cp.empty = lambda shape, dtype=float: _dev(np.empty(shape, dtype))
    cp.zeros = lambda shape, dtype=float: _dev(np.zeros(shape, dtype))
    cp.full = lambda shape, value, dtype=None: _dev(np.full(shape, value, dtype))
    cp.maximum = lambda a, b: _dev(np.maximum(a, b))
    cp.asnumpy = lambda a: np.array(a).view(np.ndarray)
    cp.matmul, cp.sqrt, cp.isfinite, cp.isnan = np.matmul, np.sqrt, np.isfinite, np.isnan
    cp.cuda = types.SimpleNamespace(Device=StandInDevice,
                                    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    monkeypatch.setitem(sys.modules, "cupy", cp)
    monkeypatch.setattr(_cupy, "_MODULES", {})
    monkeypatch.setattr(_cupy, "_BLOCK", 64)  # fewer emulated threads; rows span blocks
    _cupy._probe.cache_clear()
    yield cp
    _cupy._probe.cache_clear()


@pytest.mark.parametrize("tol", [None, 0.1])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wrapper_matches_reference_exactly(stand_in_cupy, dtype, positive, tol,
                                           dyadic_problem):
    X, D, _ = dyadic_problem(20, 8, 131, seed=2)
    X, D = X.astype(dtype), D.astype(dtype)
    b = (np.arange(8) % 3 / 2).astype(dtype)
    kw = dict(n_steps=7, bias=b, positive=positive, tol=tol)
    ref = mp_encode(X, D, backend="numpy", **kw)
    got = mp_encode(X, D, backend="cupy", **kw)
    assert type(got) is np.ndarray
    assert_same_bits(got + 0, ref + 0)
    on_device = mp_encode(_dev(X), D, backend="auto", gram=D @ D.T, **kw)
    assert type(on_device) is StandInArray  # CuPy in, CuPy out
    assert_same_bits(np.asarray(on_device) + 0, ref + 0)
    ref_sel = pursue(X, D, backend="numpy", **kw)
    for got_sel, want in zip(pursue(X, D, backend="cupy", **kw), ref_sel, strict=True):
        assert type(got_sel) is np.ndarray
        assert_array_equal(got_sel, want)


@pytest.mark.parametrize("stops", [dict(residual_threshold=2.0), dict(coef_threshold=0.75),
                                   dict(tol=0.2, residual_threshold=1.0, coef_threshold=0.5)])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wrapper_budget_modes_match_reference_exactly(stand_in_cupy, dtype, positive, stops,
                                                      dyadic_problem):
    X, D, b = dyadic_problem(20, 8, 131, seed=4)
    X, D, b = X.astype(dtype), D.astype(dtype), b.astype(dtype)
    kw = dict(n_steps=7, bias=b, positive=positive, **stops)
    ref = mp_encode(X, D, backend="numpy", **kw)
    assert (ref != 0).sum() < (mp_encode(X, D, n_steps=7, bias=b, positive=positive,
                                         backend="numpy") != 0).sum()
    assert_same_bits(mp_encode(X, D, backend="cupy", **kw) + 0, ref + 0)
    assert_same_bits(np.asarray(mp_encode(_dev(X), D, **kw)) + 0, ref + 0)
    for got, want in zip(pursue(X, D, backend="cupy", **kw), pursue(X, D, backend="numpy", **kw),
                         strict=True):
        assert_array_equal(got, want)


@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
def test_wrapper_random_data_in_small_chunks(stand_in_cupy, positive):
    X, D = random_problem(21, 16, 100, np.float32, seed=4)
    b = np.full(16, 0.1, dtype=np.float32)
    ref = mp_encode(X, D, n_steps=6, bias=b, positive=positive, tol=0.2, backend="numpy")
    budget = 2 * 8 * (100 + 16 + 12) * 4  # 8 rows per chunk
    for X_in in (X, _dev(X)):
        # The Gram matrix is given: the budget only sizes the chunks.
        got = np.asarray(mp_encode(X_in, D, n_steps=6, bias=b, positive=positive, tol=0.2,
                                   gram=D @ D.T, backend="cupy", memory_budget=budget))
        # Only the squared norms' summation order differs from the reference.
        assert_array_equal(got != 0, ref != 0)
        assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    assert len(stand_in_cupy.launches) == 2 * 3
    assert all(block == (64,) and grid[0] <= 8 for grid, block in stand_in_cupy.launches)


def test_gram_over_budget_hands_over_to_per_step_products(stand_in_cupy):
    X, D = random_problem(21, 16, 100, np.float64, seed=4)
    ref = mp_encode(X, D, n_steps=6, backend="numpy")
    budget = 100 * 100 * 8 - 1  # the Gram matrix would not fit
    got = mp_encode(X, D, n_steps=6, backend="cupy", memory_budget=budget)
    assert stand_in_cupy.launches == []  # torch's per-step products ran instead
    assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_uploaded_dictionary_is_reused_as_is(stand_in_cupy, dyadic_problem):
    # What MatchingPursuitSAE(device="cuda") does: upload once, encode many times.
    X, D, b = dyadic_problem(20, 8, 131, seed=3)
    Dd, bd, Gd = _cupy.upload(D, b)
    assert all(type(a) is StandInArray for a in (Dd, bd, Gd))
    assert_array_equal(np.asarray(Gd), D @ D.T)
    ref = mp_encode(X, D, n_steps=5, bias=b, backend="numpy")
    for _ in range(2):
        got = _core.encode(X, Dd, n_steps=5, bias=bd, gram=Gd, backend="cupy")
        assert type(got) is np.ndarray
        assert_same_bits(got + 0, ref + 0)


def test_wrapper_builds_module_once_per_device(stand_in_cupy):
    X, D = random_problem(6, 4, 10, np.float64, seed=0)
    for _ in range(2):
        mp_encode(X, D, n_steps=2, backend="cupy")
        mp_encode(X.astype(np.float32), D, n_steps=2, backend="cupy")
    with StandInDevice(1):
        mp_encode(X, D, n_steps=2, backend="cupy")
    mp_encode(_dev(X), D, n_steps=2)
    assert [device for device, _ in stand_in_cupy.builds] == [0, 1]
    assert all(code == KERNEL.read_text() for _, code in stand_in_cupy.builds)


def test_wrapper_empty_and_zero_steps(stand_in_cupy):
    X, D = random_problem(3, 4, 10, np.float64, seed=0)
    assert not mp_encode(X, D, n_steps=0, backend="cupy").any()
    idx, coef = pursue(X[:0], D, n_steps=3, backend="cupy")
    assert idx.shape == coef.shape == (0, 3)
    assert stand_in_cupy.launches == []


def test_auto_prefers_cupy_when_it_runs(stand_in_cupy):
    assert _plan.choose_backend("auto") == "cupy"
    assert _plan.choose_backend("numba") == "numba"


DEVICE_BAD_INPUTS = [
    # (X, dictionary, kwargs, match): the host path's messages, for a GPU X.
    ("nan", None, {}, r"X contains NaN"),
    ("inf", None, {}, r"X contains infinity"),
    (None, "nan", {}, r"dictionary contains NaN"),
    (None, "wide", {}, r"dictionary has 6 features but X has 5"),
    (None, "long", {}, r"(?s)unit L2 norm; 1 rows do not.*np\.linalg\.norm"),
    (None, None, dict(bias=np.zeros(4)), r"bias must have shape \(5,\), got \(4,\)"),
    (None, None, dict(bias=np.full(5, np.inf)), r"bias contains infinity"),
    (None, None, dict(gram=np.eye(6)), r"gram must be dictionary @ dictionary.T of shape"),
    ("complex", None, {}, r"X must hold real numbers"),
    ("1d", None, {}, r"X must be a 2-D array"),
    (None, None, dict(backend="numba"), r"X is a CuPy array but backend='numba'.*'cupy'"),
]


@pytest.mark.parametrize("x_case, d_case, kwargs, match", DEVICE_BAD_INPUTS)
def test_wrapper_validates_gpu_input(stand_in_cupy, x_case, d_case, kwargs, match):
    X, D = random_problem(4, 5, 7, np.float64, seed=0)
    X = {"nan": np.where(X > 1, np.nan, X), "inf": np.where(X > 1, np.inf, X),
         "complex": X.astype(complex), "1d": X[0]}.get(x_case, X)
    D = {"nan": np.where(D > 0.5, np.nan, D), "wide": np.ones((7, 6)) / 6 ** 0.5,
         "long": np.vstack([D, 1.01 * D[:1]])}.get(d_case, D)
    with pytest.raises(ValueError, match=match):
        mp_encode(_dev(X), D, n_steps=2, **kwargs)


def test_gpu_input_int_becomes_float64(stand_in_cupy, dyadic_problem):
    X, D, _ = dyadic_problem(5, 4, 6, seed=0)
    got = mp_encode(_dev((4 * X).astype(np.int32)), D, n_steps=3)
    assert got.dtype == np.float64
    assert_array_equal(np.asarray(got), mp_encode(4 * X, D, n_steps=3, backend="numpy"))


# --------------------------------------------------------------------------- without CuPy


@pytest.fixture
def no_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    _cupy._probe.cache_clear()
    yield
    _cupy._probe.cache_clear()


def test_cupy_backend_without_cupy_says_why(no_cupy):
    X, D = random_problem(3, 4, 5, np.float64, seed=0)
    with pytest.raises(ImportError, match=r"(?s)backend='cupy' needs CuPy.*skmpsae\[gpu\]") as info:
        mp_encode(X, D, n_steps=2, backend="cupy")
    assert isinstance(info.value.__cause__, ImportError)
    assert str(info.value.__cause__) in str(info.value)
    assert not _cupy.is_available()
    assert _plan.choose_backend("auto") in {"numba", "torch"}


def test_cupy_backend_without_gpu_says_why(monkeypatch):
    class CUDARuntimeError(RuntimeError):
        pass

    def no_device():
        raise CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    cp = types.ModuleType("cupy")
    cp.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device))
    monkeypatch.setitem(sys.modules, "cupy", cp)
    _cupy._probe.cache_clear()
    try:
        X, D = random_problem(3, 4, 5, np.float64, seed=0)
        with pytest.raises(RuntimeError, match=r"backend='cupy' cannot run.*cudaErrorNoDevice"):
            mp_encode(X, D, n_steps=2, backend="cupy")
        assert not _cupy.is_available()
    finally:
        _cupy._probe.cache_clear()


def test_auto_is_numba_here():
    # No CuPy and no GPU on the test machines: "auto" runs the CPU kernel.
    import torch

    if _cupy.is_available() or torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert _plan.choose_backend("auto") == "numba"


def test_package_works_without_cupy():
    code = (
        "import sys; sys.modules['cupy'] = None\n"
        "import numpy as np, skmpsae\n"
        "from skmpsae._pursuit._plan import choose_backend\n"
        "print(choose_backend('auto'))\n"
        "print(skmpsae.mp_encode([[3.0, -1.0, 2.0]], np.eye(3), n_steps=2, backend='numpy'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    assert out.stdout.split() == ["numba", "[[3.", "0.", "2.]]"] or "torch" in out.stdout


def test_kernel_file_ships_with_the_package():
    # pyproject's package-data names it; the wrapper reads it from the package.
    text = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"skmpsae._pursuit" = ["kernels/*.cu"]' in text
    assert KERNEL.is_file() and KERNEL.parent.parent == Path(_cupy.__file__).parent
