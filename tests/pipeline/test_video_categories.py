"""The trainer's video -> category table, read from the raw log's category column."""

import numpy as np

from tf_ccl4rec.config import CCL4RecConfig
from tf_ccl4rec.trainer import video_categories, video_tables


class _Vocabulary:
    """The one TFTransformOutput method `video_categories` reads."""

    def __init__(self, ids):
        self._ids = [i.encode() for i in ids]

    def vocabulary_by_name(self, name):
        return self._ids


def _config(**values):
    return CCL4RecConfig(vocab_size=4, history_statistics=True, category_statistics=True,
                         **values)  # fmt: skip


def test_each_video_gets_its_most_frequent_category(tmp_path, capsys):
    (tmp_path / "interactions.csv").write_text(
        "user_id,video_id,timestamp,click,category\n"
        "u1,a,1,1,news\n"
        "u2, a ,2,0,news\n"  # ids are stripped, as the example builder does
        "u3,a,3,0,sport\n"
        "u1,b,4,1,sport\n"
        "u2,c,5,0,\n"  # no category: says nothing about c
        "u3,e,6,1,music\n"  # not in the vocabulary
    )
    table = video_categories(_config(), _Vocabulary(["a", "b", "c", "d"]), str(tmp_path))
    # Categories in sorted order: music 1, news 2, sport 3. Rows: padding, a, b, c, d, OOV.
    np.testing.assert_array_equal(table, [0, 2, 3, 0, 0, 0])
    assert "categories for 2/4 videos (3 categories)" in capsys.readouterr().out


def test_no_category_column_or_switched_off_gives_none(tmp_path, capsys):
    (tmp_path / "interactions.csv").write_text("user_id,video_id,timestamp,click\nu1,a,1,1\n")
    vocab = _Vocabulary(["a", "b", "c", "d"])
    assert video_categories(_config(), vocab, str(tmp_path)) is None
    assert "no 'category' column: category statistics off" in capsys.readouterr().out
    off = CCL4RecConfig(vocab_size=4, history_statistics=True)
    assert video_categories(off, vocab, str(tmp_path)) is None


def test_video_tables_are_ccl4recs_only(tmp_path):
    # One place decides which models get the per-video tables: CCL4Rec reads them, the baselines
    # read ids only (as in the paper).
    (tmp_path / "interactions.csv").write_text(
        "user_id,video_id,timestamp,click,category\nu1,a,1,1,news\nu2,b,2,0,sport\n"
    )
    vocab = _Vocabulary(["a", "b", "c", "d"])
    content, categories = video_tables("ccl4rec", _config(), vocab, str(tmp_path))
    assert content is None  # id representation: no content table
    np.testing.assert_array_equal(categories, [0, 1, 2, 0, 0, 0])
    assert video_tables("ncf", _config(), vocab, str(tmp_path)) == (None, None)
