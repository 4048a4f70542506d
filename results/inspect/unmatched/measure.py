import itertools, torch, gymnasium as gym, numpy as np, json
from zoo_rl.envs import AtariSettings
from zoo_rl.rl.zoo.extractor import ZooNatureCNN
from zoo_rl.rl.zoo.random_play import random_play
from zoo_rl.rl.zoo.measures import LINEARITY_EVERY
torch.set_num_threads(2)
F="agents/family/"
zoo=[F+f for f in ["phoenix_ppo_s0.zip","spaceinvaders_ppo_s0.zip","assault_ppo_s0.zip","breakout_ppo_s0.zip","pong_ppo_s0.zip","pong+breakout+spaceinvaders+assault+phoenix_ppo_s0.zip"]]
s=AtariSettings()
space=gym.spaces.Box(0,255,(4,84,84),np.uint8)
out={}
for game in ["DemonAttack","Atlantis"]:
    frames,_=random_play(game,s,0,8,1000)
    ex=ZooNatureCNN(space,zoo)  # default recipe, no start: members as shipped, no matching
    pairs=list(itertools.combinations(range(6),2))
    err=ex.linearity_errors(frames[::LINEARITY_EVERY],pairs)
    names=ex.member_names
    out[game]={f"{names[i]}~{names[j]}":[round(e,4) for e in err[i,j]] for i,j in pairs}
    for k,v in out[game].items(): print(game,k,v)
json.dump(out,open("/tmp/draft/unmatched.json","w"),indent=1)
