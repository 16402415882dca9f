"""gio_rs.KMeans against scikit-learn (inertia within 1% with the same n_init), brute-force
prediction, determinism, dtypes and errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.datasets import load_digits, make_blobs

import gio_rs
from gio_rs import GioError


@pytest.mark.parametrize(
    "data, k, n_init",
    [
        (make_blobs(4000, centers=12, n_features=16, cluster_std=2.0, random_state=0)[0], 12, 3),
        (load_digits().data, 10, 10),
        (load_digits().data.astype(np.float32), 30, 4),
    ],
    ids=["blobs", "digits", "digits-float32-k30"],
)
def test_inertia_within_one_percent_of_scikit_learn(data, k, n_init):
    ours = gio_rs.KMeans(k, n_init=n_init, random_state=0).fit(data)
    theirs = SklearnKMeans(k, n_init=n_init, random_state=0).fit(data)
    assert ours.inertia_ <= theirs.inertia_ * 1.01, (ours.inertia_, theirs.inertia_)
    assert ours.cluster_centers_.shape == (k, data.shape[1])
    assert ours.cluster_centers_.dtype == data.dtype
    # inertia_ is what the centers and labels say it is.
    d = ((data.astype(np.float64) - ours.cluster_centers_.astype(np.float64)[ours.labels_]) ** 2).sum()
    assert abs(d - ours.inertia_) <= 1e-3 * d


def test_predict_equals_brute_force_nearest_center():
    X = load_digits().data
    model = gio_rs.KMeans(15, random_state=1).fit(X)
    rng = np.random.default_rng(0)
    Y = rng.normal(8, 4, (500, 64))
    dist = ((Y[:, None, :] - model.cluster_centers_[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(model.predict(Y), dist.argmin(axis=1))
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    np.testing.assert_allclose(model.transform(Y), np.sqrt(dist), rtol=1e-9, atol=1e-9)
    assert model.score(Y) == pytest.approx(-dist.min(axis=1).sum(), rel=1e-9)
    np.testing.assert_array_equal(model.fit_predict(X), model.labels_)


def test_seeded_fit_is_reproducible_and_given_centers_are_used():
    X = make_blobs(3000, centers=5, n_features=8, random_state=2)[0]
    a = gio_rs.KMeans(5, n_init=2, random_state=7).fit(X)
    b = gio_rs.KMeans(5, n_init=2, random_state=7).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    start = X[:5]
    c = gio_rs.KMeans(5, init=start, max_iter=1).fit(X)
    # One Lloyd step from X[:5]: the centers are the means of the points nearest to each start.
    nearest = ((X[:, None, :] - start[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    np.testing.assert_allclose(
        c.cluster_centers_, [X[nearest == j].mean(axis=0) for j in range(5)], rtol=1e-12
    )
    # init="random" starts from K distinct rows: with K = N, from every row (each its own center).
    few = X[:6]
    s = gio_rs.KMeans(6, init="random", random_state=3, max_iter=1).fit(few)
    assert sorted(map(tuple, s.cluster_centers_)) == sorted(map(tuple, few))
    assert s.inertia_ == 0.0
    # Run to convergence, it ends on a Lloyd fixed point: every row labelled with its nearest
    # center, every center the mean of its rows, the inertia their squared distances.
    r = gio_rs.KMeans(5, init="random", random_state=3, tol=0.0, max_iter=300).fit(X)
    assert r.n_iter_ < 300
    sq = ((X[:, None, :] - r.cluster_centers_[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(r.labels_, sq.argmin(axis=1))
    np.testing.assert_allclose(
        r.cluster_centers_, [X[r.labels_ == j].mean(axis=0) for j in range(5)], rtol=1e-9
    )
    assert r.inertia_ == pytest.approx(sq.min(axis=1).sum(), rel=1e-9)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_clusters=0), "n_clusters"),
        (dict(n_clusters=101), "n_clusters"),
        (dict(n_clusters=3, n_init=0), "n_init"),
        (dict(n_clusters=3, tol=-1.0), "tol"),
        (dict(n_clusters=3, init="kmeans||"), "init"),
        (dict(n_clusters=3, init=np.zeros((2, 4))), "init"),
        (dict(n_clusters=3, init=np.zeros((3, 5))), "init"),
        (dict(n_clusters=3, max_iter=0), "max_iter"),
    ],
)
def test_bad_parameters_name_the_argument(kwargs, name):
    X = np.random.default_rng(0).normal(size=(100, 4))
    with pytest.raises(GioError, match=f"^{name}:"):
        gio_rs.KMeans(**kwargs).fit(X)


def test_bad_input_and_unfitted_use():
    X = np.random.default_rng(0).normal(size=(100, 4))
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(GioError, match="^X: contains NaN"):
        gio_rs.KMeans(3).fit(bad)
    with pytest.raises(GioError, match="^KMeans: call fit"):
        gio_rs.KMeans(3).predict(X)
    model = gio_rs.KMeans(3, random_state=0).fit(X)
    with pytest.raises(GioError, match="^X: has 5 columns"):
        model.predict(np.zeros((2, 5)))


def test_progress_bar_reports_iterations_without_changing_the_fit(capsys):
    x = np.random.default_rng(5).normal(size=(400, 3))
    quiet = gio_rs.KMeans(6, n_init=2, max_iter=15, random_state=1).fit(x)
    shown = gio_rs.KMeans(6, n_init=2, max_iter=15, random_state=1, progress=True).fit(x)
    err = capsys.readouterr().err
    assert "KMeans K=6" in err and "inertia=" in err
    np.testing.assert_array_equal(quiet.labels_, shown.labels_)
    np.testing.assert_array_equal(quiet.cluster_centers_, shown.cluster_centers_)
    with pytest.raises(TypeError, match="^progress:"):
        gio_rs.KMeans(2, progress="yes").fit(x)
