"""Renamed option values ("seed" meant the blog post; now it means only a random seed): the new
names work, the old ones still work for one release and say what replaced them."""
import numpy as np
import pytest

from tinyseg import _moved
from tinyseg.cli import main
from helpers import save_image_and_annotation  # noqa: E402
from tinyseg.cli.recipe import RECIPES
from tinyseg.weights.checkpoint import load_checkpoint, save_checkpoint

TINY = ["--width", "0.03125", "--iterations", "1", "--no-progress"]


@pytest.fixture
def data(tmp_path):
    img, ann = save_image_and_annotation(tmp_path, (33, 41), (8, 25, 10, 30))
    return ["--image", img, "--annotation", ann]


def test_every_old_value_maps_to_a_current_one():
    assert _moved.VALUES[("--recipe", "seed")] in RECIPES
    assert "seed" not in RECIPES
    for (option, old), new in _moved.VALUES.items():
        assert option.startswith("--") and old != new and "seed" not in new


def test_recipe_post_is_the_posts_settings(tmp_path, data, capsys):
    ckpt = str(tmp_path / "post.h5")
    assert main(["train", *data, "--recipe", "post", "--checkpoint", ckpt, *TINY]) == 0
    out = capsys.readouterr()
    assert "recipe post: adam lr 0.0001 constant, batch 1, sum loss" in out.out
    assert "deprecated" not in out.err
    assert load_checkpoint(ckpt).config["recipe"] == "post"


def test_recipe_seed_still_trains_as_post_with_one_line_on_stderr(tmp_path, data, capsys):
    ckpt = str(tmp_path / "old.h5")
    assert main(["train", *data, "--recipe", "seed", "--checkpoint", ckpt, *TINY]) == 0
    out = capsys.readouterr()
    assert out.err.strip() == "--recipe seed is deprecated; use --recipe post"
    assert "recipe post:" in out.out
    assert load_checkpoint(ckpt).config["recipe"] == "post"


def test_an_unknown_recipe_lists_only_the_current_names(data, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *data, "--recipe", "nope", *TINY])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'post'" in err and "'seed'" not in err and len(err.strip().splitlines()) == 1


def test_a_checkpoint_that_stored_recipe_seed_resumes_as_post(tmp_path, data, capsys):
    ckpt = str(tmp_path / "c.h5")
    assert main(["train", *data, "--recipe", "post", "--checkpoint", ckpt, *TINY]) == 0
    saved = load_checkpoint(ckpt)
    save_checkpoint(ckpt, saved.params, saved.adam_state, {**saved.config, "recipe": "seed"},
                    extra=saved.extra)
    capsys.readouterr()
    assert main(["train", *data, "--checkpoint", ckpt, "--resume", "--iterations", "2",
                 "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "resumed from" in out.out and "recipe post:" in out.out
    assert load_checkpoint(ckpt).config["recipe"] == "post"
    assert load_checkpoint(ckpt).adam_state["step"] == 2


def test_new_value_warns_for_an_old_value_only():
    with pytest.warns(DeprecationWarning, match="'seed' .*use 'post'"):
        assert _moved.new_value("--recipe", "seed") == "post"
    assert _moved.new_value("--recipe", "seed", warn=False) == "post"
    assert _moved.new_value("--recipe", "scratch") == "scratch"


def test_study_data_chelsea_seed_is_chelsea_post_with_a_warning():
    from tinyseg.studies.cures import STUDY_DATA, study_data

    assert "chelsea-post" in STUDY_DATA and "chelsea-seed" not in STUDY_DATA
    post_train, post_test, n = study_data("chelsea-post")
    with pytest.warns(DeprecationWarning, match="'chelsea-seed' .*use 'chelsea-post'"):
        old_train, old_test, old_n = study_data("chelsea-seed")
    assert old_n == n == 2 and len(old_test[0]) == len(post_test[0]) == 2
    assert np.array_equal(old_train[0][1], post_train[0][1])


def test_demo_data_chelsea_seed_parses_as_chelsea_post_with_one_line_on_stderr(capsys):
    from tinyseg.cli import build_parser

    args = build_parser().parse_args(["demo", "--compare", "--data", "chelsea-seed"])
    assert args.data == "chelsea-post"
    assert capsys.readouterr().err.strip() == "--data chelsea-seed is deprecated; use --data chelsea-post"
    assert build_parser().parse_args(["demo", "--compare", "--data", "chelsea-post"]).data == "chelsea-post"
    assert capsys.readouterr().err == ""
