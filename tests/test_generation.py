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
