"""`remit flywheel`: planning, early validation, the end-to-end smoke run, and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remit.config import ConfigError, load_config, to_dict
from remit.flywheel.config import FlywheelConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "flywheel"


def test_default_yaml_is_the_embedded_default():
    assert to_dict(load_config(FlywheelConfig, CONFIGS / "default.yaml")) == to_dict(load_config(FlywheelConfig))


def test_sections_override_defaults_key_by_key():
    cfg = load_config(FlywheelConfig, None, ["pretrain.token_budget=1000"])
    assert cfg.pretrain["token_budget"] == 1000
    assert cfg.pretrain["model"]["fresh"]["hidden_size"] == 128  # the rest of the default stays


def test_plan_orders_stages_and_validates_before_running(tmp_path):
    from remit.flywheel.run import plan

    cfg = load_config(FlywheelConfig, None, [f"runs_dir={tmp_path}", "rounds=2", "baselines=[sft_guided, rho1]"])
    stages = plan(cfg)
    ids = [s.id for s in stages]
    assert ids[:8] == ["world", "pretrain", "midtrain-vanilla", "post-vanilla", "midtrain-remit-r1",
                       "post-remit-r1", "midtrain-remit-r2", "post-remit-r2"]
    by_id = {s.id: s for s in stages}
    # round 2 is guided by round 1's RL model; baselines by round 0's (SFT-guided: its SFT model)
    assert by_id["midtrain-remit-r2"].config.reference.path.endswith("post-remit-r1/grpo")
    assert by_id["midtrain-remit-r1"].config.reference.path.endswith("post-vanilla/grpo")
    assert by_id["midtrain-sft-guided"].config.reference.path.endswith("post-vanilla/sft")
    assert by_id["midtrain-sft-guided"].config.method.name == "remit"
    assert by_id["midtrain-rho1"].config.method.name == "rho1"
    # every ReMiT round and baseline starts from the same pre-annealing checkpoint, on the same data/schedule
    mids = [s.config for s in stages if s.kind == "midtrain" and s.label != "vanilla-aa"]
    assert {m.model.path for m in mids} == {by_id["pretrain"].config.out_dir}
    assert len({json.dumps(to_dict(m.data)) for m in mids}) == 1
    assert len({json.dumps(to_dict(m.schedule)) for m in mids}) == 1
    # P, B0, B1, B2, 2 baselines and the A/A arm; 3 post-trained; P, B0, B1 and the A/A arm also asked as chats
    assert sum(s.kind == "eval" for s in stages) == 7 + 3 + 4
    with pytest.raises(ConfigError, match=r"midtrain \(midtrain-vanilla\).*optim\.lrr"):
        plan(load_config(FlywheelConfig, None, [f"runs_dir={tmp_path}", "midtrain.optim.lrr=1"]))
    with pytest.raises(ConfigError, match="baselines: 'dpo' is not known"):
        load_config(FlywheelConfig, None, ["baselines=[dpo]"])


@pytest.mark.slow
def test_smoke_flywheel_runs_and_resumes_without_redoing_stages(tmp_path, monkeypatch):
    from remit.flywheel import run as fw
    from remit.posttrain import chain

    cfg = load_config(FlywheelConfig, CONFIGS / "smoke.yaml", [f"runs_dir={tmp_path}"])
    calls = {"post": 0}
    real_chain = chain.run

    def crash_on_second_posttrain(c):
        calls["post"] += 1
        if calls["post"] == 2:
            raise KeyboardInterrupt  # the user stops the flywheel during post-remit-r1
        return real_chain(c)

    monkeypatch.setattr(chain, "run", crash_on_second_posttrain)
    with pytest.raises(KeyboardInterrupt):
        fw.run(cfg)
    root = tmp_path / "smoke"
    done_before = {d.name: json.loads((d / "manifest.json").read_text())["finished_at"]
                   for d in root.iterdir() if (d / "manifest.json").is_file()}
    assert {"world", "pretrain", "midtrain-vanilla", "post-vanilla", "midtrain-remit-r1"} <= set(done_before)
    assert "post-remit-r1" not in done_before

    monkeypatch.setattr(chain, "run", real_chain)
    report = fw.run(cfg)
    for name in ("world", "pretrain", "midtrain-vanilla", "midtrain-remit-r1"):  # reused, not redone
        assert json.loads((root / name / "manifest.json").read_text())["finished_at"] == done_before[name]
    manifest = json.loads((root / "manifest.json").read_text())
    assert set(manifest["models"]) >= {"pre-annealing", "vanilla", "remit-r1", "vanilla+post", "remit-r1+post"}
    assert all(st["done"] for st in manifest["stages"].values())
    for label in ("vanilla", "remit-r1", "vanilla+post", "remit-r1+post"):
        res = json.loads((Path(manifest["evals"][label]["world"]) / "results.json").read_text())
        assert res["tasks"]["world"]["bpb"]["n"] == 8  # eval.limit=8 of the 40 held-out tasks
    text = Path(report).read_text()
    assert "did ReMiT beat vanilla?" in text and ("did not beat vanilla" in text or "beat vanilla" in text)
    assert (root / "report.html").is_file()


def test_the_default_plans_an_aa_arm_and_the_style_probe_on_chat_evals(tmp_path):
    """The embedded default's A/A arm is vanilla with only another packing seed (the manifest names it as the
    noise floor); every chat evaluation of the world scores the teacher-forced style probe, base evaluations not."""
    from remit.flywheel.run import _aa_label, plan

    stages = plan(load_config(FlywheelConfig, None, [f"runs_dir={tmp_path}"]))
    by_id = {s.id: s for s in stages}
    aa, van = by_id["midtrain-vanilla-aa"].config, by_id["midtrain-vanilla"].config
    assert (aa.data.pack_seed, van.data.pack_seed) == (1, 0) and aa.seed == van.seed
    assert aa.model.path == van.model.path and aa.reference.path is None and aa.method.name == "ntp"
    assert to_dict(aa.schedule) == to_dict(van.schedule) and aa.token_budget == van.token_budget
    assert "post-vanilla-aa" not in by_id and "eval-vanilla-aa-world" in by_id
    assert _aa_label(stages, "vanilla") == "vanilla-aa"
    probed = {s.label for s in stages if s.kind == "eval" and s.config.world_probe}
    assert probed == {"pre-annealing@chat", "vanilla@chat", "remit-r1@chat", "vanilla-aa@chat", "vanilla+post",
                      "remit-r1+post"}
    assert all(s.config.world_probe_style_only for s in stages if s.kind == "eval" and s.label in probed)
    world = by_id["world"].config
    assert world.midtrain_chat_frac == 0.4 and world.n_eval == 500
    # an extra arm from vanilla that changes more than the data order is no noise floor; eval.world_probe kept whole
    other = plan(load_config(FlywheelConfig, None, [f"runs_dir={tmp_path}", "name=b", "eval={world_probe: true}",
                                                    "arms=[{name: v2, from: vanilla, overrides: {seed: 1, token_budget: 1000}}]"]))
    assert _aa_label(other, "vanilla") is None
    assert not any(s.config.world_probe_style_only for s in other if s.kind == "eval")
    assert all(s.config.world_probe for s in other if s.kind == "eval")
    assert "eval-v2@chat-world" not in {s.id for s in other}  # an arm is asked as chats only with chat: true
    with pytest.raises(ConfigError, match=r"arms\[0\]\.chat='yes': give true or false"):
        load_config(FlywheelConfig, None, ["arms=[{name: a, from: vanilla, chat: 'yes'}]"])


def test_eta_uses_this_runs_stage_costs():
    from remit.flywheel.run import Stage, _eta

    def st(sid, kind, ref=None):
        return Stage(sid, kind, None, lambda c: c, info={"reference": ref} if kind == "midtrain" else {})

    stages = [st("pretrain", "pretrain"), st("mid-v", "midtrain"), st("post-v", "posttrain"),
              st("mid-r", "midtrain", ref="x"), st("post-r", "posttrain"), st("eval-a", "eval")]
    walls = {"pretrain": 100.0, "mid-v": 50.0, "post-v": 80.0}
    assert _eta(stages, walls, set(walls)) == "ETA: after the first stage of each kind"  # no eval measured yet
    walls["eval-a"] = 5.0
    stages.append(st("eval-b", "eval"))
    assert _eta(stages, walls, set(walls)) == "ETA ~2.6 min"  # 1.4 * 50 + 80 + 5 = 155 s


def test_chat_models_are_asked_the_question_itself(tmp_path):
    from remit.flywheel.run import plan

    stages = plan(load_config(FlywheelConfig, None, [f"runs_dir={tmp_path}"]))
    evals = {st.id: st.config for st in stages if st.kind == "eval"}
    assert evals["eval-vanilla+post-world"].chat and evals["eval-vanilla+post-world"].world_template == "{prompt}"
    assert not evals["eval-vanilla-world"].chat
    assert evals["eval-vanilla-world"].world_template == "Question: {prompt}\nAnswer:"
    # the default world and post-training of the embedded default (docs/world.md)
    world = next(st.config for st in stages if st.kind == "world")
    assert world.kinds == ["chain"] and world.direct_frac == 0.7 and world.n_eval == 500
    post = next(st.config for st in stages if st.kind == "posttrain")
    assert post.grpo.temperature == 1.0 and post.sft.eval.n == post.grpo.eval.n == 500


def test_a_registered_method_is_a_flywheel_arm_with_only_its_keys(tmp_path, monkeypatch):
    """A plugin's method is a baseline with no edit of the flywheel; each arm gets the method keys it reads."""
    from remit.flywheel.run import plan
    from remit.methods import Method, register_method
    from remit.objectives import NTP

    monkeypatch.setattr("remit.methods.registry._REGISTERED", {})
    register_method(Method(name="flat", build=lambda cfg: NTP(), params={"scale": 1.0}))
    cfg = load_config(FlywheelConfig, None, [f"runs_dir={tmp_path}", "baselines=[flat, kd]",
                                             "midtrain.method={epsilon: 0.1, alpha: 0.3}"])
    by_id = {s.id: s for s in plan(cfg)}
    flat = by_id["midtrain-flat"]
    assert flat.config.method.name == "flat" and flat.config.reference.path is None  # needs no reference
    assert flat.info["arm"] == "flat" and flat.label == "flat"
    assert by_id["midtrain-remit-r1"].config.method.epsilon == 0.1  # ReMiT reads epsilon ...
    assert by_id["midtrain-kd"].config.method.alpha == 0.3 and by_id["midtrain-kd"].config.method.epsilon == 0.2
    assert by_id["midtrain-vanilla"].config.method.epsilon == 0.2  # ... vanilla (ntp) and KD do not
    assert "eval-flat-world" in by_id
    with pytest.raises(ConfigError, match=r"midtrain\.method\.epsilonn.*Did you mean 'epsilon'"):
        plan(load_config(FlywheelConfig, None, [f"runs_dir={tmp_path}", "midtrain.method={epsilonn: 0.1}"]))


def test_real_model_preset_plans_with_its_world_files(tmp_path):
    """configs/flywheel/smollm2.yaml plans (every stage validated) without the model or ../shared present; a
    "{world}" source path is this flywheel's world folder wherever runs_dir and name put it."""
    from remit.flywheel.run import plan

    cfg = load_config(FlywheelConfig, CONFIGS / "smollm2.yaml", [f"runs_dir={tmp_path}", "name=elsewhere"])
    stages = {st.id: st for st in plan(cfg)}
    assert "pretrain" not in stages and cfg.start_checkpoint.endswith(".gguf")
    mid = stages["midtrain-remit-r1"].config
    chat = [s for s in mid.data.sources if s.kind == "chat"]
    assert [s.path for s in chat] == [str(tmp_path / "elsewhere" / "world" / "sft.jsonl")]
    assert chat[0].response_field == "response"
    assert mid.reference.path == str(tmp_path / "elsewhere" / "post-vanilla" / "grpo")
    assert stages["post-remit-r1"].config.grpo.eval.n == stages["world"].config.n_eval


def test_extra_arms_start_from_their_arm_with_overrides_and_curves_plan_snapshot_evals(tmp_path):
    from remit.flywheel.run import plan

    arms = ("arms=[{name: remit-tau3, from: remit-r1, overrides: {method.temperature: 3.0}},"
            " {name: vanilla-half, from: vanilla, overrides: {token_budget: 250000}, posttrain: true},"
            " {name: placebo, from: remit-r1, overrides: {method.name: remit_placebo}},"
            " {name: chat-remit, from: remit-r1, world: {midtrain_chat_frac: 0.5}},"
            " {name: chat-sft, from: remit-r1, world: {midtrain_chat_frac: 0.5}, overrides: {reference.path: s0}},"
            " {name: lr, from: remit-r1, overrides: {optim: {lr: 5.0e-4}, method: {temperature: 2.0}}}]")
    cfg = load_config(FlywheelConfig, None, [f"runs_dir={tmp_path}", arms, "chat_evals=[vanilla, chat-remit]",
                                             "world={n_eval: 500}",  # the chain world without chat tasks
                                             "curves={arms: [vanilla, vanilla-half], points: 3, eval: {limit: 50}}"])
    by_id = {s.id: s for s in plan(cfg)}
    r1, van = by_id["midtrain-remit-r1"].config, by_id["midtrain-vanilla"].config
    tau, half, placebo = (by_id[f"midtrain-{n}"].config for n in ("remit-tau3", "vanilla-half", "placebo"))
    assert tau.method.temperature == 3.0 and r1.method.temperature == 1.0
    lr = by_id["midtrain-lr"].config  # a section given as a mapping merges into the arm's, key by key
    assert lr.optim.lr == 5e-4 and lr.optim.batch_size == r1.optim.batch_size == 16
    assert lr.method.name == "remit" and lr.method.temperature == 2.0
    assert tau.reference.path == r1.reference.path == placebo.reference.path
    assert placebo.method.name == "remit_placebo" and placebo.method.epsilon == r1.method.epsilon
    assert half.token_budget == 250_000 and van.token_budget == 500_000 and half.method.name == "ntp"
    assert to_dict(half.schedule) == to_dict(van.schedule) and half.model.path == van.model.path
    assert half.data == van.data and half.seed == van.seed
    assert "post-vanilla-half" in by_id and "post-remit-tau3" not in by_id
    assert {"eval-remit-tau3-world", "eval-vanilla-half+post-world", "eval-placebo-world"} <= set(by_id)
    # a world arm: the flywheel's world with its keys changed, generated once, its midtrain.jsonl the arm's data
    worlds = [s for s in by_id.values() if s.kind == "world" and s.id != "world"]
    assert len(worlds) == 1 and worlds[0].config.midtrain_chat_frac == 0.5 and worlds[0].config.seed == 0
    chat, chat_sft = by_id["midtrain-chat-remit"].config, by_id["midtrain-chat-sft"].config
    assert chat.data.sources[0].path == str(Path(worlds[0].config.out_dir) / "midtrain.jsonl")
    assert chat_sft.data.sources == chat.data.sources and chat_sft.reference.path == "s0"
    assert chat.reference.path == r1.reference.path and by_id["world"].config.midtrain_chat_frac == 0
    # chat_evals: the base model asked as chats, beside its pre-training-format evaluation
    ask = by_id["eval-chat-remit@chat-world"].config
    assert ask.model == chat.out_dir and ask.chat and ask.world_template == "{prompt}"
    assert not by_id["eval-chat-remit-world"].config.chat and "eval-vanilla@chat-world" in by_id
    # curves: snapshots at the middle of each arm's own budget (a whole number of steps), scored with the curve
    # eval overrides, the start and the end too; the other arms write none
    per = 16 * 256
    assert van.total_steps == 123 and half.total_steps == 62  # ceil(500000 / 4096), ceil(250000 / 4096)
    assert van.snapshot_tokens == [123 * per // 2] and half.snapshot_tokens == [31 * per] and tau.snapshot_tokens == []
    assert van.snapshot_steps() == {62: 62 * per}
    curve = {k: s for k, s in by_id.items() if s.kind == "curve" and s.label == "vanilla"}
    assert sorted(s.info["tokens"] for s in curve.values()) == [0, 62 * per, 123 * per]
    snap = curve[f"curve-vanilla-{62 * per}-world"].config
    assert snap.model.endswith(f"midtrain-vanilla/snapshots/tokens-{62 * per:012d}") and snap.limit == 50
    assert curve["curve-vanilla-0-world"].config.model == by_id["pretrain"].config.out_dir


@pytest.mark.parametrize("over, msg", [
    ("arms=[{name: t, from: remit-r1, overrides: {method.temprature: 3}}]",
     r"'arms\[0\].overrides.method.temprature'.*Did you mean 'temperature'"),
    ("arms=[{name: t, from: vanilla, overrides: {method.temperature: 3}}]",
     r"arms\[0\].overrides.method.temperature: method ntp does not read it"),
    ("arms=[{name: t, from: remit-r2}]", r"arms\[0\].from='remit-r2' is not a mid-trained arm.*vanilla, remit-r1"),
    ("arms=[{name: vanilla, from: vanilla}]", r"arms\[0\].name='vanilla'.*already has an arm"),
    ("arms=[{name: t, from: vanilla, overrides: {out_dir: x}}]", r"arms\[0\].overrides.out_dir: set by the flywheel"),
    ("curves={arms: [kd], points: 3}", r"curves.arms: 'kd' is not a mid-trained arm"),
    ("chat_evals=[vanilla+post]", r"chat_evals: 'vanilla\+post' is not a base model"),
    ("arms=[{name: t, from: vanilla, world: {midtrain_chat_fraction: 0.5}}]",
     r"'arms\[0\].world.midtrain_chat_fraction'.*Did you mean 'midtrain_chat_frac'"),
    ("curves={arms: [vanilla], points: 3, tokens: [10]}", r"curves.tokens: give tokens .* or points"),
])
def test_extra_arm_and_curve_errors_name_the_key(tmp_path, over, msg):
    from remit.flywheel.run import plan

    with pytest.raises(ConfigError, match=msg):
        plan(load_config(FlywheelConfig, None, [f"runs_dir={tmp_path}", over]))


def test_report_options_are_checked_before_any_stage_runs(tmp_path):
    from remit.flywheel.run import run

    cfg = load_config(FlywheelConfig, None, [f"runs_dir={tmp_path}", "report_options={guidance_textz: 16}"])
    with pytest.raises(ConfigError, match=r"report_options.*guidance_textz.*Did you mean 'guidance_texts'"):
        run(cfg)
    assert not (tmp_path / "default" / "world").exists()
