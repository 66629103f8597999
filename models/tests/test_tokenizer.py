"""The reference tokenizer is CLIP's (open_clip 2.16), with CLIP's merges file and with any smaller one."""
import gzip

import pytest

from models.san import tokenizer as tokenizer_module
from models.san.tokenizer import SimpleTokenizer, fix_text_subset, tokenize

# What ftfy.fix_text (6.3) gives, and fix_text_subset and lib/tokenizer.ts's fixText give without it.
FTFY_CASES = [
    ("don\u2019t", "don't"),
    ("\u2018a cat\u2019 and \u201ca dog\u201d", "'a cat' and \"a dog\""),
    ("\u201ab\u201b \u201ec\u201f", "'b' \"c\""),
    ("\ufb01sh \ufb02ower", "fish flower"),
    ("\ufb00 \ufb03 \ufb04 \ufb05 \ufb06 \u0132\u0133 \u01c7\u01c8\u01c9\u01ca\u01cb\u01cc",
     "ff ffi ffl \u017ft st IJij LJLjljNJNjnj"),
    ("\uff21\uff22\uff23\uff11\uff12\uff13", "ABC123"),
    ("\uff43\uff41\uff54\u3000\uff01\uff5e", "cat !~"),
    ("cafe\u0301 nai\u0308ve", "caf\u00e9 na\u00efve"),
    ("a photo of a cat.", "a photo of a cat."),
]


@pytest.fixture(scope="module")
def clip(clip_vocab):
    return SimpleTokenizer(clip_vocab)


@pytest.fixture()
def without_ftfy(monkeypatch):
    """The tokenizer as on Debian 12, which has no ftfy package, even where ftfy is installed."""
    monkeypatch.setattr(tokenizer_module, "ftfy", None)


def test_clip_vocabulary(clip):
    assert (clip.vocab_size, clip.sot_token, clip.eot_token) == (49408, 49406, 49407)


def test_clip_ids_of_a_prompt(clip):
    assert clip.encode("a photo of a cat.") == [320, 1125, 539, 320, 2368, 269]
    # Lower-cased, whitespace collapsed and stripped, HTML unescaped.
    assert clip.encode("  A \t PHOTO\nof a   Cat. ") == [320, 1125, 539, 320, 2368, 269]
    assert clip.encode("a photo of a cat&#46;") == clip.encode("a photo of a cat.")
    assert clip.encode("cat &amp;amp; cat") == clip.encode("cat & cat")


def test_clip_pre_split(clip):
    # Digits are single tokens; a special token typed in the text is kept whole.
    assert len(clip.encode("2023")) == 4
    assert clip.encode("<start_of_text>a<end_of_text>") == [49406, 320, 49407]
    assert clip.encode("it's") == clip.encode("it") + clip.encode("'s")


def test_tokenize_pads_and_truncates(clip):
    rows = tokenize(clip, ["a photo of a cat.", "cat " * 100], context_length=77)
    assert rows.shape == (2, 77) and rows.dtype.is_floating_point is False
    assert rows[0, :8].tolist() == [49406, 320, 1125, 539, 320, 2368, 269, 49407]
    assert not rows[0, 8:].any()
    assert rows[1, 0] == 49406 and rows[1, -1] == 49407 and (rows[1, 1:-1] == 2368).all()
    assert tokenize(clip, ["a cat"], context_length=5).tolist() == [[49406, 320, 2368, 49407, 0]]


def write_merges(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(line + "\n" for line in lines))
    return path


def test_small_merges_file_is_used_whole(tmp_path):
    tokenizer = SimpleTokenizer(write_merges(tmp_path / "m.txt.gz", ["c a", "ca t</w>", "t h", "th e</w>"]))
    assert tokenizer.vocab_size == 512 + 4 + 2
    assert (tokenizer.sot_token, tokenizer.eot_token) == (516, 517)
    assert tokenizer.encode("the cat") == [514 + 1, 512 + 1]  # "the</w>", "cat</w>"
    # Without a merge a word stays bytes, the last one marked as the end of a word ("d" is byte 100: 67 + 256).
    assert tokenizer.encode("dog") == [67, 78, 70 + 256]


def test_tiny_vocabulary_covers_every_byte(tiny_vocab):
    tokenizer = SimpleTokenizer(tiny_vocab)
    assert tokenizer.vocab_size == 768
    ids = tokenizer.encode("日本語 🐱 naïve")
    assert ids and max(ids) < tokenizer.vocab_size
    assert len(tokenizer.encode("pottedplant")) < len("pottedplant")  # merges learned from the class names


def test_malformed_merges_file_names_the_line(tmp_path):
    with pytest.raises(ValueError, match=r"line 3 is not a BPE merge 'first second': 'a b c'"):
        SimpleTokenizer(write_merges(tmp_path / "bad.txt.gz", ["c a", "a b c"]))


@pytest.mark.parametrize("text, fixed", FTFY_CASES)
def test_fix_text_subset(text, fixed):
    assert fix_text_subset(text) == fixed


@pytest.mark.parametrize("text, fixed", FTFY_CASES)
def test_fix_text_subset_equals_ftfy(text, fixed):
    ftfy = pytest.importorskip("ftfy")
    assert ftfy.fix_text(text) == fix_text_subset(text) == fixed


@pytest.mark.parametrize("text, fixed", [
    # Outside the subset, where ftfy 6.3 gives "'", "'n", "\u30ab\u00a5", "ab\u2026cd" and "&".
    ("\u02bc", "\u02bc"),
    ("\u0149", "\u02bcn"),
    ("\uff76\uffe5", "\uff76\uffe5"),
    ("a\x1cb\x85c\ufeffd", "a\x1cb\x85c\ufeffd"),
    ("&amp;amp;", "&amp;amp;"),
])
def test_fix_text_subset_leaves_the_rest_alone(text, fixed):
    assert fix_text_subset(text) == fixed


@pytest.mark.parametrize("text, ids", [
    ("don\u2019t", [847, 713]),
    ("\u2018a cat\u2019 and \u201ca dog\u201d", [262, 320, 2368, 262, 537, 257, 320, 1929, 257]),
    ("\ufb01sh \ufb02ower", [2759, 4055]),
    ("\uff21\uff22\uff23\uff11\uff12\uff13", [5334, 272, 273, 274]),
    ("a photo of a cafe\u0301.", [320, 1125, 539, 320, 15304, 269]),
])
def test_clip_ids_without_ftfy(clip, without_ftfy, text, ids):
    assert clip.encode(text) == ids == clip.encode(fix_text_subset(text))


def test_tiny_ids_without_ftfy(tiny_vocab, without_ftfy):
    tokenizer = SimpleTokenizer(tiny_vocab)
    assert tokenizer.encode("don\u2019t") == tokenizer.encode("don't") == [544, 333, 6, 339]
    for text, fixed in FTFY_CASES:
        assert tokenizer.encode(text) == tokenizer.encode(fixed)
