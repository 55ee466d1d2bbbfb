"""A tiny emotion classifier (RoBERTa, 7 labels, 32-token limit) built and saved locally, so
the transformers path runs without the hub."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaForSequenceClassification

LABELS = ["joy", "sadness", "anger", "fear", "surprise", "disgust", "neutral"]
MAX_LENGTH = 32  # special tokens included, so 30 tokens of text per chunk
SENTENCES = [
    "i cry alone in the dark tonight",
    "we celebrate the win with joy and love",
    "angry at the world , fists up",
    "fear in the streets at night",
    "the money came as a surprise",
    "tears on my pillow , heart broken",
]


def _build_tokenizer() -> PreTrainedTokenizerFast:
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's ids: pad is 1
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=specials))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=MAX_LENGTH,
    )


def _build_model(vocab_size: int) -> RobertaForSequenceClassification:
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_LENGTH + 2,  # RoBERTa positions start after pad id 1
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        initializer_range=0.3,  # larger weights than usual, so probabilities differ by label
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    return RobertaForSequenceClassification(config).eval()


def save_tiny_emotion_model(folder: Path) -> Path:
    tokenizer = _build_tokenizer()
    tokenizer.save_pretrained(folder)
    _build_model(len(tokenizer)).save_pretrained(folder)
    return folder
