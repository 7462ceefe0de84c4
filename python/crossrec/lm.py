"""The decoder language model and the item-language model."""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from ._ffi import ffi, lib, take_text, text
from .context import Context, default_context
from .errors import check, new_error


class LM:
    """A decoder LM with its tokenizer: LM.load(path, tokenizer=...)."""

    def __init__(self, handle, path: str):
        self._lm = handle
        self.path = path
        self.vocab_size = lib.cr_lm_vocab_size(handle)
        self.context_length = lib.cr_lm_context_length(handle)
        self.bos = lib.cr_lm_bos_id(handle)

    @classmethod
    def load(cls, path: str, tokenizer: Optional[str] = None, bf16: bool = False,
             gpt2_heads: int = 0) -> "LM":
        """path: a llama2.c .bin, a crossrec LM checkpoint or a Hugging Face
        GPT-2 safetensors (gpt2_heads when it has no config); tokenizer: a
        GPT-2 BPE directory or a llama2.c tokenizer.bin; bf16: multiply by
        bf16 copies of the weights (inference only)."""
        o = ffi.new("cr_lm_load_opts *")
        lib.cr_lm_load_opts_init(o)
        tok = ffi.new("char[]", str(tokenizer).encode()) if tokenizer else ffi.NULL
        o.tokenizer = tok
        o.bf16 = 1 if bf16 else 0
        o.gpt2_heads = gpt2_heads
        out = ffi.new("cr_lm **")
        err = new_error()
        check(lib.cr_lm_load(out, str(path).encode(), o, err), err)
        return cls(ffi.gc(out[0], lib.cr_lm_free), str(path))

    def __repr__(self) -> str:
        return f"LM({self.path!r}, vocab={self.vocab_size}, context={self.context_length})"

    def tokenize(self, s: str) -> List[int]:
        ids = ffi.new("int32_t **")
        n = ffi.new("size_t *")
        err = new_error()
        check(lib.cr_lm_tokenize(self._lm, s.encode("utf-8"), ids, n, err), err)
        try:
            return list(ffi.unpack(ids[0], n[0]))
        finally:
            lib.cr_free(ids[0])

    def detokenize(self, ids: Sequence[int]) -> str:
        arr = ffi.new("int32_t[]", list(ids))
        out = ffi.new("char **")
        err = new_error()
        check(lib.cr_lm_detokenize(self._lm, arr, len(ids), out, err), err)
        return take_text(out[0])

    def _opts(self, n: int, temperature: float, top_k: int, top_p: float, seed: int):
        g = ffi.new("cr_gen_opts *")
        lib.cr_gen_opts_init(g)
        g.n_tokens, g.temperature, g.top_k, g.top_p, g.seed = n, temperature, top_k, top_p, seed
        return g

    def generate(self, prompt: str = "", n: int = 64, temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 0.9, seed: int = 0, context: Optional[Context] = None) -> str:
        """The continuation of prompt (BOS is prepended): n tokens sampled at
        temperature (0 = greedy), top-k (0 = off) and top-p."""
        ctx = context or default_context()
        out = ffi.new("char **")
        err = new_error()
        with ctx.call(False) as c:
            check(lib.cr_lm_generate(c, self._lm, prompt.encode("utf-8"),
                                     self._opts(n, temperature, top_k, top_p, seed), out, err), err)
        return take_text(out[0])

    def generate_ids(self, prompt: Sequence[int], n: int = 64, temperature: float = 1.0,
                     top_k: int = 0, top_p: float = 0.9, seed: int = 0,
                     context: Optional[Context] = None) -> List[int]:
        """Continue a prompt of ids (no BOS added)."""
        ctx = context or default_context()
        p = ffi.new("int32_t[]", list(prompt))
        out = ffi.new("int32_t[]", n)
        err = new_error()
        with ctx.call(False) as c:
            check(lib.cr_lm_generate_ids(c, self._lm, p, len(prompt),
                                         self._opts(n, temperature, top_k, top_p, seed), out, err),
                  err)
        return list(out)


class ILM:
    """A trained item-language model (the directory `crossrec ilm phase2`
    writes): ILM.load(dir). Items are catalogue ids (MovieLens movieId)."""

    def __init__(self, handle, path: str):
        self._m = handle
        self.path = path

    @classmethod
    def load(cls, path: str) -> "ILM":
        out = ffi.new("cr_ilm **")
        err = new_error()
        check(lib.cr_ilm_open(out, str(path).encode(), err), err)
        return cls(ffi.gc(out[0], lib.cr_ilm_close), str(path))

    def __repr__(self) -> str:
        return f"ILM({self.path!r}, items={len(self)})"

    def __len__(self) -> int:
        return lib.cr_ilm_n_items(self._m)

    def items(self) -> pd.DataFrame:
        """The catalogue: item id and title."""
        n = len(self)
        return pd.DataFrame({"item": [lib.cr_ilm_item_id(self._m, i) for i in range(n)],
                             "title": [text(lib.cr_ilm_item_title(self._m, i)) for i in range(n)]})

    def find(self, name: str) -> Optional[int]:
        """The item whose title best matches a typed name, or None."""
        i = lib.cr_ilm_find(self._m, name.encode("utf-8"))
        return None if i < 0 else int(i)

    def recommend(self, liked: Sequence[Union[int, str]], k: int = 10,
                  context: Optional[Context] = None) -> pd.DataFrame:
        """k items for a person who liked these (ids, or titles to match):
        item, title and score (the frozen LM's mean log-likelihood per title
        token), best first."""
        ids = []
        for x in liked:
            if isinstance(x, str):
                i = self.find(x)
                if i is None:
                    from .errors import NotFoundError
                    raise NotFoundError(f"no catalogue title matches {x!r}")
                ids.append(i)
            else:
                ids.append(int(x))
        arr = ffi.new("int64_t[]", ids)
        items = ffi.new("int64_t[]", k)
        scores = ffi.new("double[]", k)
        n = ffi.new("int *")
        err = new_error()
        ctx = context or default_context()
        with ctx.call(False) as c:
            check(lib.cr_ilm_recommend(c, self._m, arr, len(ids), k, items, scores, n, err), err)
        got = [int(items[i]) for i in range(n[0])]
        titles = self.items().set_index("item")["title"]
        return pd.DataFrame({"item": got, "title": [titles.get(i) for i in got],
                             "score": np.array([scores[i] for i in range(n[0])])})

    def chat(self, line: str, context: Optional[Context] = None) -> str:
        """One conversational turn (the conversation's state lives in the ILM)."""
        out = ffi.new("char **")
        err = new_error()
        ctx = context or default_context()
        with ctx.call(False) as c:
            check(lib.cr_ilm_chat(c, self._m, line.encode("utf-8"), out, err), err)
        return take_text(out[0])
