"""The OCR prompt and the structured output schema the served model is asked for."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

# Bump when the wording changes: failure records and DPO pairs carry it, and pairs are
# only valid for the prompt they were generated with.
PROMPT_VERSION = "dharma-json-v1"

# The schema of DharmaOCR: four fields, each the transcribed text of that page region.
OUTPUT_FIELDS = ("header", "margin", "footer", "text")

OCR_INSTRUCTION = (
    "Transcreva o documento da imagem. Responda somente com um objeto JSON com as chaves "
    '"header", "margin", "footer" e "text", cada uma com o texto daquela região '
    "(string vazia quando não houver)."
)

# Qwen2.5-VL conversation format, written for the embedded model's processor.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class PagePrompt:
    """What the model is asked about one page image: ocrguard's instruction by default, or
    a client's own prompt as it sent it (OpenAI endpoint: its text, system message and
    where the image stands among the text)."""

    text: str = OCR_INSTRUCTION
    system: str | None = None
    image_first: bool = True

    def messages(self) -> list[dict[str, object]]:
        """The chat messages, the image as a ``{"type": "image"}`` placeholder."""
        parts: list[dict[str, object]] = [{"type": "text", "text": self.text}]
        parts.insert(0 if self.image_first else 1, {"type": "image"})
        messages: list[dict[str, object]] = [{"role": "user", "content": parts}]
        if self.system is not None:
            messages.insert(0, {"role": "system", "content": self.system})
        return messages


def prompt_version(prompt: PagePrompt) -> str:
    """``PROMPT_VERSION`` for ocrguard's own prompt; a client's is named by its hash."""
    if prompt == PagePrompt():
        return PROMPT_VERSION
    digest = hashlib.sha256(json.dumps(prompt.messages(), sort_keys=True).encode()).hexdigest()
    return f"client-{digest[:16]}"


def ocr_messages(instruction: str = OCR_INSTRUCTION) -> list[dict[str, object]]:
    """The chat messages for one page: the image, then the instruction."""
    return PagePrompt(instruction).messages()


class ChatPrompts:
    """The chat-formatted text of each page prompt for one processor, rendered once."""

    def __init__(self, processor) -> None:
        self._processor = processor
        self._rendered: dict[PagePrompt, str] = {}

    def __call__(self, prompt: PagePrompt) -> str:
        text = self._rendered.get(prompt)
        if text is None:
            text = self._processor.apply_chat_template(
                prompt.messages(), add_generation_prompt=True
            )
            self._rendered[prompt] = text
        return text


@dataclass(frozen=True)
class PageFields:
    header: str = ""
    margin: str = ""
    footer: str = ""
    text: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {f: getattr(self, f) for f in OUTPUT_FIELDS}, ensure_ascii=False, separators=(",", ":")
        )

    @property
    def transcription(self) -> str:
        """The text the fields hold, region by region in reading order: what CER is
        measured on (the JSON keys and quoting would count as free correct characters)."""
        return "\n".join(p for p in (self.header, self.margin, self.text, self.footer) if p)


def parse_output(raw: str) -> PageFields | None:
    """The page fields of a model output, or None when it is not the expected JSON object.

    Tolerates a markdown code fence around the object and missing keys (empty), because
    production models emit both; anything that is not a JSON object of strings is None.
    """
    text = raw.strip()
    if text.startswith("```"):
        text = text.strip("`")
        text = text.removeprefix("json").strip()
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    fields = {}
    for key in OUTPUT_FIELDS:
        item = value.get(key, "")
        if item is None:
            item = ""
        if not isinstance(item, str):
            return None
        fields[key] = item
    return PageFields(**fields)


def transcription_of(raw: str) -> str:
    """The transcription a raw output holds: its fields when it parses as the schema, the
    raw text otherwise."""
    fields = parse_output(raw)
    return raw if fields is None else fields.transcription
