import json, re, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.set_num_threads(1)
path, world = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(path); m = AutoModelForCausalLM.from_pretrained(path).eval()
rows = [json.loads(l) for l in open(f"{world}/eval.jsonl")][:int(sys.argv[3]) if len(sys.argv)>3 else 100]
STEP = re.compile(r"(\d+) ([-+*]) (\d+) = (\d+)\.")
stats = {}
tok.padding_side = "left"
prompts = [f"Question: {r['prompt']}\nAnswer: {STEP.findall(r['solution'])[0][0]}" for r in rows]
out_all=[]
for i in range(0, len(prompts), 50):
    enc = tok(prompts[i:i+50], return_tensors="pt", padding=True)
    with torch.no_grad():
        g = m.generate(**enc, max_new_tokens=110, do_sample=False, pad_token_id=tok.pad_token_id)
    out_all += tok.batch_decode(g[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
ok_task = 0
for r, p, o in zip(rows, prompts, out_all):
    text = p.split("Answer: ")[1] + o
    text = text.split("\n")[0]
    gold = STEP.findall(r["solution"])
    got = STEP.findall(text)
    ok_task += (f"The answer is {r['answer']}." in text)
    for k, (a, op, b, c) in enumerate(got):
        kind = "x" if op == "*" else ("hard" if int(b) >= 10 else "easy")
        gk = gold[k] if k < len(gold) else None
        copy_ok = gk is not None and (a, op, b) == gk[:3]
        arith_ok = eval(f"{a}{op}{b}") == int(c)
        s = stats.setdefault(kind, [0, 0, 0]); s[0] += 1; s[1] += copy_ok; s[2] += arith_ok
print("task acc (worked forced)", ok_task / len(rows))
for k, (n, c, a) in stats.items(): print(k, n, "copy ok", round(c / n, 3), "arith ok", round(a / n, 3))
for r, p, o in list(zip(rows, prompts, out_all))[:6]:
    print(repr(p[-60:]), '->', repr(o[:120]), '| gold', r['solution'][:80])
