"""The window tables: PyTorch's formulas, the tables' invariants, the 'is it a plain pool' query."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jaxpool import windows


def test_adaptive_windows_of_the_seed_question():
    w = windows.adaptive(5, 3)
    assert w.starts.tolist() == [0, 1, 3] and w.lengths.tolist() == [2, 3, 2]
    assert windows.adaptive(6, 8).describe() == [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (3, 5), (4, 6), (5, 6)]


@pytest.mark.parametrize("n_in, n_out", list(itertools.product(range(1, 16), range(1, 16))))
def test_adaptive_windows_cover_the_input_and_match_torch_argmax(n_in, n_out):
    w = windows.adaptive(n_in, n_out)
    assert w.starts[0] == 0 and w.starts[-1] + w.lengths[-1] == n_in
    assert (w.lengths >= 1).all() and (np.diff(w.starts) >= 0).all()
    # each window's argmax over a ramp is its last cell: checks start + length against torch
    x = torch.arange(n_in, dtype=torch.float32).view(1, 1, -1)
    _, idx = F.adaptive_max_pool1d(x, n_out, return_indices=True)
    assert (w.starts + w.lengths - 1).tolist() == idx.view(-1).tolist()
    _, idx = F.adaptive_max_pool1d(-x, n_out, return_indices=True)
    assert w.starts.tolist() == idx.view(-1).tolist()


@pytest.mark.parametrize("n_in, n_out", list(itertools.product(range(1, 25), range(1, 25))))
def test_equivalent_fixed_is_exact(n_in, n_out):
    found = windows.equivalent_fixed(n_in, n_out)
    x = torch.randn(1, 1, n_in, dtype=torch.float64)
    adaptive = F.adaptive_avg_pool1d(x, n_out)
    if found is not None:
        k, s = found
        torch.testing.assert_close(F.avg_pool1d(x, k, s), adaptive)
    if n_in % n_out == 0:
        assert found == (n_in // n_out, n_in // n_out) or n_out == 1


@pytest.mark.parametrize("size, k, s, p, d, ceil", [
    (c[0], c[1], c[2], c[3], c[4], c[5])
    for c in itertools.product((1, 2, 5, 7, 10), (1, 2, 3), (1, 2, 3), (0, 1), (1, 2), (False, True)) if c[3] <= c[1] // 2
])
def test_output_size_matches_torch(size, k, s, p, d, ceil):
    expected = windows.pooling_output_size(size, k, s, p, d, ceil)
    try:
        got = F.max_pool1d(torch.zeros(1, 1, size), k, s, p, d, ceil_mode=ceil).shape[-1]
    except RuntimeError:
        assert expected < 1
        return
    assert got == expected


def test_ceil_mode_drops_a_window_starting_in_the_right_padding():
    # 5 cells, k2 s2 p1: ceil would give 4 windows; the 4th starts at 5 = in + pad - 1... inside padding
    assert windows.pooling_output_size(5, 2, 2, 1, 1, True) == 3
    assert windows.pooling_output_size(6, 2, 2, 1, 1, True) == 4


def test_count_include_pad_divisor_is_cut_at_the_end_of_the_padding():
    w = windows.fixed(5, 2, 2, 1, 1, True)
    assert w.starts.tolist() == [-1, 1, 3]
    assert w.padded_counts.tolist() == [2, 2, 2] and w.inside_counts.tolist() == [1, 2, 2]
    w = windows.fixed(5, 3, 2, 1, 1, True)
    assert w.padded_counts.tolist() == [3, 3, 3]


def test_tables_are_cached_and_read_only():
    assert windows.adaptive(33, 7) is windows.adaptive(33, 7)
    with pytest.raises(ValueError):
        windows.adaptive(33, 7).starts[0] = 5
