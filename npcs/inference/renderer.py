"""The model's own chat template and tokenizer, and keeping llama.cpp's chatter out of the server's output.

The worker renders and tokenizes prompts with a `PromptRenderer` over its loaded model; the herd uses a vocab-only
copy (no weights, loads in milliseconds) to count a quote's real prompt tokens, and world loading uses one to check
that a scored template's choices are single tokens.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
from typing import Any, Iterator


def build_info(llama_cpp: Any) -> dict[str, str]:
    info = llama_cpp.llama_print_system_info()
    return {"llama_cpp_python": llama_cpp.__version__,
            "system": info.decode() if isinstance(info, bytes) else str(info)}


def quiet_llama_cpp() -> None:
    """llama.cpp's messages go through llama-cpp-python's "llama-cpp-python" logger, which is left unset until a
    model finishes loading; set it so loading chatter stays out of the server's output. Errors still show."""
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)


_llama_log = logging.getLogger("llama_land.llama_cpp")


def _to_debug_log(level: int, text: bytes, user_data: Any) -> None:
    _llama_log.debug("%s", text.decode("utf-8", errors="replace").rstrip())


@contextlib.contextmanager
def llama_cpp_log_as_debug() -> Iterator[None]:
    """While loading a vocab-only model, llama.cpp reports at *error* level that it has no training context
    (true, and harmless: no weights, no context). Send its log to our debug log for that moment only."""
    import llama_cpp
    from llama_cpp import _logger

    callback = llama_cpp.llama_log_callback(_to_debug_log)
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    try:
        yield
    finally:
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


class PromptRenderer:
    """The model's own chat template and tokenizer. The worker renders and tokenizes prompts with it; the herd
    uses a vocab-only copy (no weights, loads in milliseconds) to count a quote's real prompt tokens."""

    def __init__(self, llm: Any):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llm = llm
        meta = llm.metadata
        eos = self.llm.detokenize([self.llm.token_eos()]).decode(errors="replace")
        bos = self.llm.detokenize([self.llm.token_bos()]).decode(errors="replace")
        self.formatter = Jinja2ChatFormatter(meta["tokenizer.chat_template"], eos_token=eos, bos_token=bos,
                                             add_generation_prompt=True)
        self.system_formatter = Jinja2ChatFormatter(meta["tokenizer.chat_template"], eos_token=eos, bos_token=bos,
                                                    add_generation_prompt=False)
        # Every end-of-generation token of the vocabulary ends an answer: the Q4_0 file of the default model ends
        # grammar-complete answers with <|endoftext|>, the Q4_1 one with <|im_end|>.
        import llama_cpp

        vocab = llm._model.vocab
        self.stop_ids = {t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)}
        self.stop_ids.add(llm.token_eos())

    @classmethod
    def vocab_only(cls, model_path: str) -> "PromptRenderer":
        import llama_cpp

        quiet_llama_cpp()
        with llama_cpp_log_as_debug():
            return cls(llama_cpp.Llama(model_path=model_path, vocab_only=True, verbose=False))

    def render(self, messages: list[dict[str, str]]) -> str:
        return self.formatter(messages=messages).prompt

    def tokens(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=False, special=True)

    def count(self, messages: list[dict[str, str]]) -> int:
        return len(self.tokens(self.render(messages)))
