from hypothesis import given, settings
from hypothesis import strategies as st

from rap_pipeline.defs.tracks.cleaning import (
    RESIDUE_PATTERNS,
    CleanedLyrics,
    classify,
    clean_lyrics,
    lyrics_hash,
    title_rejection,
)

VERSE = "\n".join(
    [
        "Woke up early with the city in my chest",
        "Counting every blessing that I never could invest",
        "Mama on the phone saying baby get some rest",
        "But the rent is due and the landlord don't jest",
    ]
)
CHORUS = "We rise, we rise, we never fall\nBack against the wall but we standing tall"


def test_genius_page_residue_is_removed_and_structure_kept():
    raw = (
        "14 ContributorsTranslationsEspañolPortuguêsRise Up Lyrics[Intro]\n"
        "Yeah, yeah\n\n"
        f"[Verse 1: MC Test]\n{VERSE}\n"
        "You might also like[Chorus]\n"
        f"{CHORUS}\n\n"
        "See MC Test LiveGet tickets as low as $42\n"
        f"[Outro]\nWe rise, we rise123Embed"
    )
    cleaned = clean_lyrics(raw, "Rise Up")
    assert cleaned.text.startswith("Yeah, yeah\n\nWoke up early")
    assert cleaned.text.endswith("We rise, we rise")
    for name, pattern in RESIDUE_PATTERNS.items():
        assert not pattern.search(cleaned.text), name
    assert [(s.kind, s.performer) for s in cleaned.sections] == [
        ("intro", None),
        ("verse", "MC Test"),
        ("chorus", None),
        ("outro", None),
    ]
    verse = cleaned.sections[1]
    assert cleaned.lines[verse.first_line] == "Woke up early with the city in my chest"
    assert verse.line_count == 4
    # stanza breaks survive: intro / verse / chorus / outro are separate stanzas
    assert cleaned.text.count("\n\n") == 3


def test_first_line_title_lyrics_without_contributors():
    cleaned = clean_lyrics(f"Rise Up Lyrics\n{VERSE}", "Rise Up")
    assert cleaned.text == VERSE


def test_unicode_and_whitespace_are_normalized():
    cleaned = clean_lyrics("I\u2019m  \u201cfine\u201d\u00a0now\u200b\r\n\n\n\nNext   line\t ")
    assert cleaned.text == 'I\'m "fine" now\n\nNext line'


def test_embed_word_inside_lyrics_is_kept():
    assert "embed the truth" in clean_lyrics(f"{VERSE}\nI embed the truth in every line").text


def test_rejection_reasons():
    def reason(title: str, lyrics: str, instrumental: bool = False) -> str | None:
        return classify(title, clean_lyrics(lyrics, title), instrumental)

    song = f"{VERSE}\n\n{CHORUS}\n\n{VERSE}"
    assert reason("Rise Up", song) is None
    assert reason("Corner Store (Skit)", song) == "skit"
    assert reason("Rise Up (Remix)", song) == "remix"
    assert reason("Rise Up (Live at the Apollo)", song) == "live_version"
    assert reason("Rise Up - Live", song) == "live_version"
    assert reason("Rise Up (Tracklist)", song) == "not_a_song"
    assert reason("Rise Up", "[Instrumental]") == "instrumental"
    assert reason("Rise Up", song, instrumental=True) == "instrumental"
    assert reason("Rise Up", "") == "empty"
    assert reason("Rise Up", "  \n [Intro]\n") == "empty"
    assert reason("Rise Up", "Too short\nreally") == "too_short"
    assert reason("Rise Up", (VERSE + "\n") * 200) == "oversized"
    assert reason("Rise Up", "1. Intro\n2. Rise Up\n3. Fall Down\n4. Outro\nProduced by X") == (
        "not_lyrics"
    )
    assert reason("Rise Up", song.replace("rest", "r\ufffdst")) == "undecodable"
    assert reason("Rise Up", song.replace("early", "earlyâ€™")) == "undecodable"


def test_titles_that_merely_contain_the_words_are_songs():
    for title in ("Alive", "Oliver's Twist", "Skittles", "Live Forever", "Credit Score"):
        assert title_rejection(title) is None, title


def test_lyrics_hash_folds_case_punctuation_and_whitespace():
    assert lyrics_hash("We rise, we RISE!\n\nNever fall") == lyrics_hash(
        "we rise we rise never fall"
    )
    assert lyrics_hash("we rise") != lyrics_hash("we fall")


lyric_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=400,
)


@settings(max_examples=300, deadline=None)
@given(lyric_text)
def test_cleaning_is_idempotent(raw: str):
    once = clean_lyrics(raw)
    assert clean_lyrics(once.text).text == once.text


PAGE_PARTS = [
    VERSE,
    CHORUS,
    "[Chorus]",
    "[Verse 2: X]",
    "",
    "You might also like",
    "You might also like[Bridge]",
    "See X LiveGet tickets as low as $30",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(PAGE_PARTS), max_size=12),
    st.sampled_from(["", "Embed", "7Embed", "1.2KEmbed"]),
    st.booleans(),
)
def test_no_residue_survives_any_arrangement(parts: list[str], embed: str, header: bool):
    raw = ("31 ContributorsSong Lyrics" if header else "") + "\n".join(parts) + embed
    cleaned: CleanedLyrics = clean_lyrics(raw, "Song")
    for name, pattern in RESIDUE_PATTERNS.items():
        assert not pattern.search(cleaned.text), (name, cleaned.text)
    assert "\n\n\n" not in cleaned.text
    assert cleaned.text == cleaned.text.strip()
