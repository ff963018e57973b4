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


def test_shared_prefix_scoring_equals_the_plain_pass(tiny_model):
    from relalign.prompts import permutation_variations
    import random

    model, tok = tiny_model
    qs = [
        Question("a", "Question: what is the largest planet ?", ("jupiter", "mars", "earth moon", "venus"), 0,
                 instruction="Answer the science question ."),
        Question("b", "Question: what is heat of the sun number 7 ?", ("light", "energy", "gas", "iron gold salt"), 1),
        Question("c", "Question: what is water ?", ("ice", "fire", "rock", "atom"), 0),
    ]
    prompts = [render(q, o) for q in qs for o in permutation_variations(4, 5, random.Random(q.qid))]
    plain = score_prompts(model, tok, prompts, progress=False)
    for budget in (40, 10_000):  # several batches, and one
        shared = score_prompts(model, tok, prompts, shared_prefix=True, max_tokens_per_batch=budget, progress=False)
        for name in ("letter_logprob", "option_logprob", "option_ntokens", "option_hidden", "last_hidden"):
            np.testing.assert_allclose(getattr(shared, name), getattr(plain, name), atol=1e-4, err_msg=name)


def test_shared_prefix_groups_stop_at_the_listing(tiny_model):
    from relalign.scoring import _shared_prefix_groups

    _, tok = tiny_model
    q = Question("a", "Question: what is water ?", ("ice", "fire", "rock", "atom"), 0)
    other = Question("b", "Question: what is fire ?", ("ice", "fire", "rock", "atom"), 0)
    prompts = [render(q), render(q, (1, 0, 2, 3)), render(other), render(q)]
    enc = tok([p.text for p in prompts], return_offsets_mapping=True)
    groups = _shared_prefix_groups(enc["input_ids"], enc["offset_mapping"], prompts)
    assert [g for g, _ in groups] == [[0, 1], [2], [3]]
    n = groups[0][1]
    assert tok.decode(enc["input_ids"][0][:n]).strip().endswith("?")
    assert groups[1][1] == 0 and groups[2][1] == 0  # alone: no prefix to share


def test_letters_only_path_gives_the_same_letters_and_no_option_scores(tiny_model):
    model, tok = tiny_model
    prompts = _prompts()
    full = score_prompts(model, tok, prompts, progress=False)
    for shared in (False, True):
        letters = score_prompts(model, tok, prompts, option_logprobs=False, shared_prefix=shared, progress=False)
        np.testing.assert_allclose(letters.letter_logprob, full.letter_logprob, atol=1e-4)
        assert np.isnan(letters.option_logprob).all()
        assert (letters.option_ntokens == full.option_ntokens).all()
