"""The reference tokenizer is CLIP's (open_clip 2.16), with CLIP's merges file and with any smaller one."""
import gzip

import pytest

from models.san.tokenizer import SimpleTokenizer, tokenize


@pytest.fixture(scope="module")
def clip(clip_vocab):
    return SimpleTokenizer(clip_vocab)


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
