"""symsol_solids: shaded 3-D solids under uniform random rotations, against closed forms and a triangle z-buffer."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import replab.data as D
from replab.data import solids

IDENTITY = [[1.0, 0.0, 0.0, 0.0]]
PX = solids.RADIUS * solids.SIZE          # one solid unit in pixels


def _cube_face_on(light=(0.0, 0.0, 1.0), ambient=solids.AMBIENT, **kw):
    return solids.render_solids([1], IDENTITY, light=light, ambient=ambient, **kw)[0, 0].double()


def test_face_on_cube_lit_along_the_view_axis_is_a_uniform_centred_square():
    img = _cube_face_on()
    side = 2 / math.sqrt(3) * PX                   # edge of a cube of circumradius 1, in pixels
    # 4×4 samples place each edge to within 1/8 pixel
    assert img.sum().item() / 255 == pytest.approx(side ** 2, abs=4 * side / 8 + 1)
    full = img == 255
    assert (side - 2) ** 2 <= full.sum().item() <= side ** 2
    assert set(torch.unique(img[16:48, 16:48]).tolist()) == {255.0}                 # uniform inside
    rows, cols = torch.nonzero(img > 0, as_tuple=True)
    w = img[rows, cols]
    assert ((rows * w).sum() / w.sum()).item() == pytest.approx(31.5, abs=0.05)
    assert ((cols * w).sum() / w.sum()).item() == pytest.approx(31.5, abs=0.05)
    assert img[:8].sum() == 0 and img[:, :8].sum() == 0                              # black background


@pytest.mark.parametrize("angle", [0.0, 30.0, 60.0, 100.0])
def test_lambertian_grey_of_the_face_on_cube_follows_the_cosine_of_the_light(angle):
    t = math.radians(angle)
    img = _cube_face_on(light=(math.sin(t), 0.0, math.cos(t)), ambient=0.25)
    expected = 255 * (0.25 + 0.75 * max(0.0, math.cos(t)))
    assert img[32, 32].item() == pytest.approx(expected, abs=1)


def test_rotations_are_unit_quaternions_uniform_on_so3():
    q = solids.rotations(np.arange(20_000), seed=3)
    assert np.allclose(np.linalg.norm(q, axis=1), 1) and (q[:, 0] >= 0).all()
    m = solids.rotation_matrices(q).numpy()
    assert np.allclose(m, Rotation.from_quat(q[:, [1, 2, 3, 0]]).as_matrix(), atol=1e-12)
    z = m[:, :, 2]                                 # where each rotation takes the z-axis
    assert np.abs(z.mean(axis=0)).max() < 0.02
    assert np.allclose(z.T @ z / len(z), np.eye(3) / 3, atol=0.01)
    angle = 2 * np.arccos(np.clip(q[:, 0], -1, 1))  # uniform on SO(3): P(angle ≤ π/2) = (π/2 − 1)/π
    assert (angle <= np.pi / 2).mean() == pytest.approx((np.pi / 2 - 1) / np.pi, abs=0.015)


def test_meshes_are_closed_convex_and_of_the_closed_form_area():
    r = 1 / math.sqrt(2)                           # the cone: base radius 1, height 2, scaled by 1 / √2
    areas = {"tetrahedron": 8 / math.sqrt(3), "cube": 8.0, "icosahedron": 5 * math.sqrt(3) * 16 / (10 + 2 * math.sqrt(5)),
             "cone": math.pi * r * (r + math.sqrt(r ** 2 + (2 * r) ** 2)), "cylinder": 2 * math.pi * 0.6 * (0.6 + 1.6)}
    for s in solids.SOLIDS:
        assert np.allclose(np.linalg.norm(s.vertices, axis=1).max(), 1.0)
        assert (s.normals @ s.vertices.T <= s.offsets[:, None] + 1e-9).all()       # every vertex inside every plane
        edges = np.sort(np.concatenate([s.faces[:, [0, 1]], s.faces[:, [1, 2]], s.faces[:, [2, 0]]]), axis=1)
        _, counts = np.unique(edges, axis=0, return_counts=True)
        assert (counts == 2).all(), s.name                                        # closed: each edge in two faces
        assert s.surface_area() == pytest.approx(areas[s.name], rel=0.02), s.name
    assert [len(s.normals) for s in solids.SOLIDS] == [4, 6, 20, 33, 34]


def test_mean_silhouette_area_is_a_quarter_of_the_surface_area():
    # Cauchy: a convex body's projection averaged over uniform rotations has area S / 4
    ids = np.arange(400)
    img = solids.render_solids(ids % 5, solids.rotations(ids, seed=1), ambient=1.0).double()[:, 0] / 255
    for k, s in enumerate(solids.SOLIDS):
        mean_area = img[k::5].sum(dim=(1, 2)).mean().item() / PX ** 2
        assert mean_area == pytest.approx(s.surface_area() / 4, rel=0.04), s.name


def _zbuffer_oracle(solid, quaternion, size, light, ambient):
    """Pixel-centre grey levels by rasterising every triangle with a depth test (no anti-aliasing)."""
    v = Rotation.from_quat(np.asarray(quaternion)[[1, 2, 3, 0]]).apply(solid.vertices)
    centres = ((np.arange(size) + 0.5) / size - 0.5) / solids.RADIUS
    px, py = np.meshgrid(centres, -centres)
    depth, grey = np.full(px.shape, -np.inf), np.zeros(px.shape)
    light = np.asarray(light) / np.linalg.norm(light)
    for f in solid.faces:
        (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = v[f]
        det = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
        if abs(det) < 1e-12:
            continue
        l0 = ((y1 - y2) * (px - x2) + (x2 - x1) * (py - y2)) / det
        l1 = ((y2 - y0) * (px - x2) + (x0 - x2) * (py - y2)) / det
        l2 = 1 - l0 - l1
        z = l0 * z0 + l1 * z1 + l2 * z2
        inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0) & (z > depth)
        n = np.cross(v[f[1]] - v[f[0]], v[f[2]] - v[f[0]])
        depth[inside] = z[inside]
        grey[inside] = ambient + (1 - ambient) * max(0.0, n @ light / np.linalg.norm(n))
    return np.round(grey * 255)


def test_one_sample_per_pixel_matches_a_triangle_zbuffer():
    q = solids.rotations(np.arange(10), seed=7)
    for k in range(10):
        shape = k % 5
        got = solids.render_solids([shape], q[k:k + 1], supersample=1, adaptive=False)[0, 0].double().numpy()
        want = _zbuffer_oracle(solids.SOLIDS[shape], q[k], solids.SIZE, solids.LIGHT, solids.AMBIENT)
        assert (np.abs(got - want) > 1).sum() <= 2, solids.SHAPE_NAMES[shape]     # a sample exactly on an edge


def test_adaptive_supersampling_equals_the_full_grid_up_to_rounding():
    ids = np.arange(60)
    q = solids.rotations(ids, seed=2)
    fast = solids.render_solids(ids % 5, q).int()
    full = solids.render_solids(ids % 5, q, adaptive=False).int()
    assert (fast - full).abs().max() <= 1


def test_the_five_solids_have_different_silhouettes_and_shaded_grey_levels():
    q = np.repeat(solids.rotations([11], seed=0), 5, axis=0)
    img = solids.render_solids(np.arange(5), q)[:, 0]
    mask = img > 0
    for i in range(5):
        for j in range(i):
            assert (mask[i] != mask[j]).sum() > 100, (i, j)


def test_shading_gives_many_grey_levels_not_a_binary_image():
    ids = np.arange(25)
    img = solids.render(ids)[:, 0]
    for k in range(5):
        assert len(torch.unique(img[k::5])) > 40, solids.SHAPE_NAMES[k]
    inside = img[img > 0]
    assert len(torch.unique(inside[inside < 255])) > 100
    # away from the silhouette the faces turned differently to the light take different grey levels
    solid = -torch.nn.functional.max_pool2d(-(img[:, None] > 0).float(), 3, 1, 1)[:, 0] > 0
    assert sum(len(torch.unique(im[inner])) >= 2 for im, inner in zip(img, solid)) >= 23


def test_an_image_depends_only_on_its_index_and_seed():
    a, b = D.load("symsol_solids", "all", n=500), D.load("symsol_solids", "all", n=200)
    idx = [3, 199, 57, 120]
    assert torch.equal(a.subset(idx).images, b.subset(idx).images)
    assert torch.equal(a.subset(idx[::-1]).images, a.subset(idx).images.flip(0))
    assert torch.equal(solids.render([57]), a.images[57:58])
    batched = torch.cat([x for x, _ in a.subset(list(range(40))).batches(7, shuffle=True, seed=5)])
    order = np.random.default_rng(5).permutation(40)
    assert torch.equal((batched * 255).round().to(torch.uint8), a.images[:40][order])
    other = D.load("symsol_solids", "all", n=200, seed=1)
    assert not torch.equal(other.images[:10], b.images[:10])


def test_load_splits_labels_and_factors():
    train, test = D.load("symsol_solids", "train", n=1000), D.load("symsol_solids", "test", n=1000)
    assert "symsol_solids" in D.names() and "symsol_solids" in D.OFFLINE
    assert len(train) == 900 and len(test) == 100
    assert set(train.ids.tolist()).isdisjoint(test.ids.tolist())
    assert torch.bincount(test.labels).tolist() == [20] * 5
    assert train.factor_names == ("shape", "qw", "qx", "qy", "qz")
    assert torch.equal(train.labels, train.factors[:, 0].long()) and torch.equal(train.labels, train.ids % 5)
    assert np.allclose(train.factors[:, 1:].numpy(), solids.rotations(train.ids.numpy()), atol=1e-7)
    again = D.load("symsol_solids", "test", n=1000)
    assert torch.equal(again.ids, test.ids)
    assert len(D.load("symsol_solids", "all")) == solids.N_IMAGES
    with pytest.raises(ValueError, match="n:"):
        D.load("symsol_solids", n=0)


def test_a_batch_of_256_renders():
    ds = D.load("symsol_solids", "train", n=2000)
    x, y = next(ds.batches(256))
    assert x.shape == (256, 1, 64, 64) and y.shape == (256, 5)
    assert x.min() == 0 and 0.5 < x.max() <= 1
    assert (x[:, 0, :3].amax(dim=(1, 2)) == 0).all()                                 # the solid stays in the frame
