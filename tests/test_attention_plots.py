"""Attention-map helpers: query dependence and regrouping one layer's maps by image."""
import pytest
import torch

import gan_helpers as gh


def test_query_dependence_is_0_for_identical_rows_and_1_minus_1_over_n_for_private_one_hot_rows():
    n = 16
    same = torch.softmax(torch.randn(2, 1, n), -1).expand(2, n, n)
    assert gh.query_dependence(same) == pytest.approx(0.0, abs=1e-12)
    assert gh.query_dependence(torch.eye(n).expand(3, n, n)) == pytest.approx(1 - 1 / n)
    half = torch.stack([torch.eye(4)[[0, 0, 0, 0]], torch.eye(4)[[0, 0, 1, 1]]])   # an image of each kind
    # second image: rows are one-hot on 0 or 1, mean row (0.5, 0.5, 0, 0): every row is 0.5 away
    assert gh.query_dependence(half) == pytest.approx(0.25)


def test_by_image_regroups_one_layer_into_rows_of_images():
    images, attn = torch.randn(5, 3, 8, 8), torch.rand(5, 4, 4)
    rows = gh.by_image((images, attn), ["a", "b"], [3, 1])
    assert list(rows) == ["a", "b"]
    assert torch.equal(rows["a"][0], images[3:4]) and torch.equal(rows["b"][1], attn[1:2])
