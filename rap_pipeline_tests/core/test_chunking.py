from hypothesis import given, settings
from hypothesis import strategies as st

from rap_pipeline.core.chunking import chunk_lyrics


def count_words(texts: list[str]) -> list[int]:
    """A stand-in tokenizer: one token per word plus the two special tokens."""
    return [len(text.split()) + 2 for text in texts]


def test_stanzas_become_chunks_and_short_ones_merge_forward():
    verse = "Line one of the verse is here\nLine two of the verse is here"
    hook = "Hook we sing it loud hook we sing it loud"
    chunks = chunk_lyrics(f"Yeah\n\n{verse}\n\n{hook}\n\nUh", count_words, max_tokens=64)
    # "Yeah" joins the verse after it; the trailing "Uh" joins the chunk before it
    assert [c.text for c in chunks] == [f"Yeah\n{verse}", f"{hook}\nUh"]
    assert [(c.first_line, c.line_count) for c in chunks] == [(0, 3), (3, 2)]


def test_a_stanza_longer_than_the_model_is_split_at_lines():
    stanza = "\n".join(f"word {i} " * 5 for i in range(20))  # 20 lines of 10 words
    chunks = chunk_lyrics(stanza, count_words, max_tokens=40)
    assert all(count_words([c.text])[0] <= 40 for c in chunks)
    assert "\n".join(c.text for c in chunks) == stanza


lines = st.text(alphabet="abc xyz", min_size=1, max_size=60).map(str.strip).filter(bool)


@settings(deadline=None)  # a stalled CI machine is not a slow function
@given(st.lists(st.lists(lines, min_size=1, max_size=8), min_size=1, max_size=12))
def test_every_line_lands_in_exactly_one_chunk_in_order(stanzas: list[list[str]]):
    text = "\n\n".join("\n".join(stanza) for stanza in stanzas)
    chunks = chunk_lyrics(text, count_words, max_tokens=48)
    all_lines = [line for stanza in stanzas for line in stanza]
    assert [line for c in chunks for line in c.text.split("\n")] == all_lines
    assert [c.first_line for c in chunks] == [
        sum(c.line_count for c in chunks[:i]) for i in range(len(chunks))
    ]
    for chunk in chunks:
        fits = count_words([chunk.text])[0] <= 48
        single_long_line = chunk.line_count == 1
        assert fits or single_long_line
