"""Batched, left-padded generation gives what one prompt at a time gives (greedy)."""

from relalign.generation import Decoding, generate


def test_batched_left_padded_greedy_equals_one_at_a_time(tiny_model):
    model, tok = tiny_model
    prompts = ["what is the sun", "the largest planet of the gas", "water", "what is the smallest cell of the plant number 3"]
    d = Decoding(max_new_tokens=6)
    batched = generate(model, tok, prompts, d, batch_size=4, progress=False)
    single = [generate(model, tok, [p], d, batch_size=1, progress=False)[0] for p in prompts]
    assert batched == single
    assert all(isinstance(t, str) and t for t in batched)


def test_sampling_is_seeded(tiny_model):
    model, tok = tiny_model
    d = Decoding(max_new_tokens=5, do_sample=True, temperature=1.5, seed=3)
    a = generate(model, tok, ["what is the sun"] * 3, d, progress=False)
    b = generate(model, tok, ["what is the sun"] * 3, d, progress=False)
    assert a == b


def test_a_checkpoints_generation_config_cannot_change_the_decoding(tiny_model):
    import copy

    model, tok = tiny_model
    prompts = ["what is the sun", "the largest planet of the gas"]
    greedy, sampled = Decoding(max_new_tokens=6), Decoding(max_new_tokens=6, do_sample=True, temperature=1.5, seed=3)
    clean = [generate(model, tok, prompts, d, progress=False) for d in (greedy, sampled)]
    shipped = copy.deepcopy(model)  # a checkpoint whose generation_config.json asks for other decoding
    shipped.generation_config.update(repetition_penalty=50.0, no_repeat_ngram_size=1, min_new_tokens=6, top_k=1,
                                     suppress_tokens=list(range(10, 60)), do_sample=True, temperature=0.1)
    assert [generate(shipped, tok, prompts, d, progress=False) for d in (greedy, sampled)] == clean


class _CharTokenizer:
    """Just enough of a tokenizer for FinalAnswerStop: one token per listed piece."""

    pieces = ["<pad>", "Q", " 7", "\n", "####", " 12", ",", "345", " so", "\n\n"]

    def get_vocab(self):
        return {p: i for i, p in enumerate(self.pieces)}

    def convert_tokens_to_string(self, tokens):
        return "".join(tokens)

    def decode(self, ids, skip_special_tokens=True):
        return "".join(self.pieces[i] for i in ids if not (skip_special_tokens and i == 0))


def test_final_answer_stop_marks_each_row_when_its_final_line_is_complete():
    import torch

    from relalign.generation import FinalAnswerStop

    tok = _CharTokenizer()
    ix = tok.get_vocab()
    rows = [
        ["Q", " so", "####", " 12", "\n"],  # complete: stop
        ["Q", "####", " 12", ",", "345"],  # the number may go on
        ["Q", " 7", "\n", " so", "\n\n"],  # a newline, but no "#### N"
        ["Q", "####", " 12", "\n\n", " so"],  # complete, but the newest token has no newline: seen one step earlier
    ]
    ids = torch.tensor([[ix[p] for p in r] for r in rows])
    assert FinalAnswerStop(tok, prompt_width=1)(ids).tolist() == [True, False, False, False]
    # the prompt's own "#### 12\n" (left of prompt_width) does not count
    assert FinalAnswerStop(tok, prompt_width=5)(ids).tolist() == [False] * 4


def test_stop_after_final_is_part_of_the_decoding_key_only_when_on(tiny_model):
    assert "stop_after_final" not in Decoding().as_dict()  # keys of runs made before the option
    assert Decoding(stop_after_final=True).as_dict()["stop_after_final"] is True
    model, tok = tiny_model  # a model that never writes "####" is decoded exactly as without the option
    prompts = ["what is the sun", "water"]
    assert generate(model, tok, prompts, Decoding(max_new_tokens=5, stop_after_final=True), progress=False) == \
        generate(model, tok, prompts, Decoding(max_new_tokens=5), progress=False)


def test_sampled_answers_are_keyed_apart_from_those_cached_with_hfs_top_k():
    assert "top_k" not in Decoding().as_dict()  # greedy keys are those of earlier runs
    assert Decoding(do_sample=True).as_dict()["top_k"] == 0


def test_finished_rows_leave_the_batch_and_the_rest_decode_as_in_one_call(tiny_model):
    import copy

    model, tok = tiny_model
    prompts = ["what is the sun", "the largest planet of the gas", "water", "what is the smallest cell of the plant"]
    d = Decoding(max_new_tokens=9)
    plain = generate(model, tok, prompts, d, batch_size=4, progress=False, chunk=100)
    # an end-of-sequence token that one row writes early and another never: rows then finish apart
    words = [t.split() for t in plain]
    eos_word = next(w[1] for w in words if all(w[1] not in v for v in words if v is not w))
    ending = copy.deepcopy(model)
    ending.generation_config.eos_token_id = tok.convert_tokens_to_ids(eos_word)
    rows_seen = []
    ending.model.embed_tokens.register_forward_hook(lambda m, i, o: rows_seen.append(o.shape[0]))
    one_call = generate(ending, tok, prompts, d, batch_size=4, progress=False, chunk=100)
    rows_seen.clear()
    chunked = generate(ending, tok, prompts, d, batch_size=4, progress=False, chunk=2)
    assert chunked == one_call
    assert sum(t.split()[-1] == eos_word for t in one_call if t.split()) >= 1  # some row did end early
    assert rows_seen[0] == 4 and min(rows_seen) < 4  # ... and left the batch


def test_a_row_is_finished_by_its_end_of_sequence_or_its_final_line():
    from relalign.generation import _finished

    tok = _CharTokenizer()
    ix = tok.get_vocab()
    ids = lambda pieces: [ix[p] for p in pieces]
    assert _finished(ids([" 7", "<pad>"]), {0}, tok, stop_after_final=False)
    assert not _finished(ids(["####", " 12", "\n"]), {0}, tok, stop_after_final=False)
    assert _finished(ids(["####", " 12", "\n"]), {0}, tok, stop_after_final=True)
    assert not _finished(ids(["####", " 12", ","]), {0}, tok, stop_after_final=True)
