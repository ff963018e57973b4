import numpy as np
import pytest
import torch

from relalign.prompts import Question, render
from relalign.scoring import letter_token_ids, score_prompts


def _prompts():
    qs = [
        Question("a", "Question: what is the largest planet ?", ("jupiter", "mars", "earth moon", "venus"), 0,
                 instruction="Answer the science question ."),
        Question("b", "Question: what is heat of the sun number 7 ?", ("light", "energy", "gas", "iron gold salt"), 1),
        Question("c", "Question: what is water ?", ("ice", "fire", "rock", "atom"), 0),
    ]
    return [render(q) for q in qs] + [render(qs[0], (3, 2, 1, 0))]


def _reference(model, tok, prompt):
    """Letter and option log-probabilities from one full forward pass, the slow obvious way."""
    enc = tok(prompt.text, return_offsets_mapping=True)
    ids = torch.tensor([enc["input_ids"]])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    letters = letter_token_ids(tok, prompt.letters)
    letter = logp[-1, letters].numpy()
    opt = []
    for s, e in prompt.option_spans:
        toks = [t for t, (a, b) in enumerate(enc["offset_mapping"]) if b > a and a < e and b > s]
        opt.append(sum(float(logp[t - 1, ids[0, t]]) for t in toks))
    return letter, np.array(opt)


def test_matches_a_full_forward_pass_and_is_batch_invariant(tiny_model):
    model, tok = tiny_model
    prompts = _prompts()
    one_by_one = score_prompts(model, tok, prompts, max_tokens_per_batch=1, progress=False)
    batched = score_prompts(model, tok, prompts, max_tokens_per_batch=10_000, progress=False)
    for i, p in enumerate(prompts):
        letter, opt = _reference(model, tok, p)
        np.testing.assert_allclose(batched.letter_logprob[i], letter, atol=1e-4)
        np.testing.assert_allclose(batched.option_logprob[i], opt, atol=1e-4)
    for name in ("letter_logprob", "option_logprob", "option_ntokens", "option_hidden", "last_hidden"):
        np.testing.assert_allclose(getattr(one_by_one, name), getattr(batched, name), atol=1e-4)
    assert batched.option_ntokens[0].tolist() == [1, 1, 2, 1]
    assert batched.option_hidden.shape == (4, 4, model.config.hidden_size)


def test_listing_order_changes_option_scores(tiny_model):
    model, tok = tiny_model
    sp = score_prompts(model, tok, _prompts(), progress=False)
    # prompt 3 lists prompt 0's options in reverse: same texts, other context
    assert not np.allclose(sp.option_logprob[0], sp.option_logprob[3][::-1])


def test_mixed_option_counts_rejected(tiny_model):
    model, tok = tiny_model
    q2 = Question("z", "Question: what ?", ("ice", "fire"), 0)
    with pytest.raises(ValueError, match="same number of options"):
        score_prompts(model, tok, _prompts()[:1] + [render(q2)], progress=False)
    with pytest.raises(ValueError, match="no prompts"):
        score_prompts(model, tok, [], progress=False)
