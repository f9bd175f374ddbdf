import pytest

from mrtcurate.train.tiny import build_tiny_model

TOY_TEXTS = [
    "name a fruit .",
    "name a colour .",
    "name an animal .",
    "pick a number between 1 and 9 .",
    "apple pear plum red blue green cat dog owl 1 2 3 4 5 6 7 8 9",
]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return str(
        build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", TOY_TEXTS, hidden_size=32, layers=2, heads=2)
    )


@pytest.fixture(scope="session")
def tiny_model_without_template(tmp_path_factory):
    return str(
        build_tiny_model(
            tmp_path_factory.mktemp("tiny_plain") / "model",
            TOY_TEXTS,
            hidden_size=32,
            layers=2,
            heads=2,
            chat_template=False,
        )
    )
