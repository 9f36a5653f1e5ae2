"""The continuous placement score ranks clips by how close each shape is to its true place, in its own colour."""

from dataclasses import replace

import numpy as np
import pytest

from miniworld import placement_score, render
from miniworld.scene import Scene, Shape


def _scene(**bg) -> Scene:
    return Scene(shapes=(Shape("square", "red", "big", "striped", slot=(0, 0), motion="right"),
                         Shape("circle", "blue", "small", "plain", slot=(2, 2), motion="still")), **bg)


def _moved(scene: Scene, slots) -> Scene:
    return replace(scene, shapes=tuple(replace(s, slot=q) for s, q in zip(scene.shapes, slots)))


def test_the_rendered_scene_scores_near_one_and_wrong_places_lower_in_order():
    scene = _scene()
    truth = placement_score(render(scene), scene)
    assert truth > 0.85
    near = placement_score(render(_moved(scene, [(0, 1), (2, 2)])), scene)   # red one slot off
    far = placement_score(render(_moved(scene, [(2, 0), (0, 2)])), scene)    # both far off
    assert truth > near > far
    assert far < 0.3


def test_colours_in_each_others_places_score_low():
    """The binding failure the mini generators show: the right shapes and places, colours swapped."""
    scene = _scene()
    swapped = replace(scene, shapes=(replace(scene.shapes[0], colour="blue"), replace(scene.shapes[1], colour="red")))
    assert placement_score(render(swapped), scene) < 0.3 < placement_score(render(scene), scene)


def test_an_empty_background_scores_zero_and_frame_counts_must_match():
    scene = _scene()
    empty = render(replace(scene, shapes=()))
    assert placement_score(empty, scene) == 0.0
    with pytest.raises(ValueError, match="frames"):
        placement_score(np.zeros((5, 64, 64, 3), np.uint8), scene)
