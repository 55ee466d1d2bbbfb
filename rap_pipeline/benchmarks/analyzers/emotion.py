"""The emotion analyzer: the NRC lexicon stand-in, and a random-weight DistilRoBERTa-sized
classifier (speed only)."""

from __future__ import annotations

import dataclasses
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
from rich.progress import Progress

from rap_pipeline.benchmarks.analyzers.partitions import (
    EMOTION_LABELS,
    SEED,
    TOKENIZER_VOCAB,
    AssetTiming,
    asset_rows,
    compare,
    delete_results,
    materialize_partitions,
)
from rap_pipeline.benchmarks.setup import Row, ratio, timed
from rap_pipeline.core.database import connect
from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.analyses.analyzer import TrackText
from rap_pipeline.defs.analyses.assets import (
    emotion_analysis,
)
from rap_pipeline.defs.analyses.emotion import LexiconEmotionAnalyzer, TransformersEmotionAnalyzer
from rap_pipeline.defs.analyses.resources import EmotionModelResource


def bench_lexicon(
    instance: dg.DagsterInstance,
    url: str,
    slugs: Sequence[str],
    tracks: list[tuple[TrackText, str]],
    progress: Progress,
    unloadable: str,
) -> list[Row]:
    """``tracks``: (track, its artist slug)."""
    tracks_of: dict[str, list[TrackText]] = defaultdict(list)
    for track, slug in tracks:
        tracks_of[slug].append(track)
    analyzer = LexiconEmotionAnalyzer()
    analyzer.analyze([track for track, _ in tracks])  # warm, as the asset's analyzer is
    resource = EmotionModelResource(model_id=unloadable)
    stand_in, reason = resource.load()
    if reason is None or not isinstance(stand_in, LexiconEmotionAnalyzer):
        raise RuntimeError(f"the emotion model in {unloadable} loaded: the fallback is not timed")
    resources = {"database": DatabaseResource(url=url), "emotion_model": resource}
    bare_s, timings = compare(
        progress,
        "emotion (lexicon stand-in): bare and asset",
        slugs,
        lambda slug: timed(lambda: analyzer.analyze(tracks_of[slug])),
        lambda slug: materialize_partitions(instance, emotion_analysis, [slug], resources),
        lambda: delete_results(url, "emotion", slugs),
    )
    bare_rate = len(tracks) / min(bare_s)
    return [
        (
            "emotion (lexicon): bare analyze",
            f"{len(tracks)} tracks in {min(bare_s):.2f} s",
            f"{bare_rate:,.1f} tracks/s",
        ),
        *asset_rows("emotion (lexicon)", "tracks", timings, bare_rate),
    ]


def train_tokenizer(texts: Sequence[str], folder: Path) -> int:
    """A byte-level BPE tokenizer (RoBERTa's special tokens and template) trained on
    ``texts``, saved in ``folder``; returns its vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's ids: pad is 1
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=TOKENIZER_VOCAB,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=512,
    )
    fast.save_pretrained(folder)
    return len(fast)


def save_random_classifier(folder: Path, vocab_size: int) -> int:
    """A DistilRoBERTa-sized sequence classifier with random weights; returns its parameters."""
    import torch
    import transformers
    from transformers import RobertaConfig, RobertaForSequenceClassification

    transformers.utils.logging.disable_progress_bar()
    torch.manual_seed(SEED)
    config = RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=768,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        id2label=dict(enumerate(EMOTION_LABELS)),
        label2id={label: i for i, label in enumerate(EMOTION_LABELS)},
    )
    model = RobertaForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def bench_transformers(
    instance: dg.DagsterInstance,
    url: str,
    slug: str,
    sample: list[TrackText],
    corpus_texts: Sequence[str],
    progress: Progress,
    folder: Path,
) -> list[Row]:
    task = progress.add_task("emotion (transformers): build a random model", total=1)
    vocab = train_tokenizer(corpus_texts, folder)
    parameters = save_random_classifier(folder, vocab)
    resource = EmotionModelResource(model_id=str(folder))
    analyzer, reason = resource.load()  # the asset reuses this very object (cached per process)
    if reason is not None or not isinstance(analyzer, TransformersEmotionAnalyzer):
        raise RuntimeError(f"the random-weight classifier did not load: {reason}")
    progress.advance(task)

    chunks = [chunk for track in sample for chunk in analyzer.chunk_texts(track.lyrics)]
    encoded = analyzer.tokenizer(chunks, truncation=True, max_length=analyzer.max_length)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    by_length = [chunk for _, chunk in sorted(zip(lengths, chunks, strict=True))]
    analyzer.predict_chunks(chunks[: analyzer.batch_size])  # first forward passes are slower
    resources = {"database": DatabaseResource(url=url), "emotion_model": resource}
    input_order_s: list[float] = []
    track_timings: list[AssetTiming] = []

    def bare(_: str) -> float:
        input_order_s.append(timed(lambda: analyzer.predict_chunks(chunks)))
        return timed(lambda: analyzer.predict_chunks(by_length))

    def asset(_: str) -> AssetTiming:
        timing = materialize_partitions(instance, emotion_analysis, [slug], resources)
        track_timings.append(timing)
        with connect(url) as conn:  # the token windows the asset read
            (windows,) = conn.execute(
                "SELECT coalesce(sum((result->>'chunks')::int), 0) FROM analyses "
                "WHERE artist_slug = %s AND analyzer = 'emotion' AND status = 'ok'",
                (slug,),
            ).fetchone()
        return dataclasses.replace(timing, results=int(windows))

    bare_s, timings = compare(
        progress,
        f"emotion (transformers): bare and asset, {len(chunks)} chunks",
        [slug],
        bare,
        asset,
        lambda: delete_results(url, "emotion", [slug]),
    )
    bare_rate = len(chunks) / min(bare_s)
    unsorted_rate = len(chunks) / min(input_order_s)
    best_step = max(timings, key=lambda t: t.step_rate)
    tracks_step = max(track_timings, key=lambda t: t.step_rate)
    what = "emotion (transformers)"
    content = [length - analyzer.special_tokens for length in lengths]
    return [
        (
            f"{what}: model",
            f"RANDOM weights (speed only): 6 x 768 RoBERTa, {parameters / 1e6:.0f}M params, "
            f"BPE vocab {vocab:,}",
            f"{len(sample)} tracks, {len(chunks)} chunks, {statistics.fmean(content):.0f} "
            f"tokens/chunk (max {max(content)})",
        ),
        (
            f"{what}: bare predict_chunks",
            f"input order, batch {analyzer.batch_size}: {min(input_order_s):.2f} s",
            f"{unsorted_rate:.2f} chunks/s",
        ),
        (
            f"{what}: bare, length-sorted",
            f"sorted by tokens, as analyze batches: {min(bare_s):.2f} s",
            f"{bare_rate:.2f} chunks/s",
        ),
        *asset_rows(what, "chunks", timings, bare_rate),
        (
            f"{what}: asset / bare input order",
            f"step {ratio(best_step.step_rate, unsorted_rate)}",
            f"{tracks_step.step_rate:.2f} tracks/s (step)",
        ),
    ]
