#!/usr/bin/env python3
"""Import circles between the files of each crate, from `use crate::…`, `use super::…` and
inline `crate::`/`super::` paths (lib.rs and mod.rs, being maps, are left out).
Usage: python3 scripts/import_circles.py [ROOT]. Prints the circles, or that there are none."""
import os,re,sys
root=sys.argv[1] if len(sys.argv) > 1 else "."
def files(src):
    out={}
    for dp,_,fs in os.walk(src):
        for f in fs:
            if f.endswith('.rs'):
                p=os.path.join(dp,f); rel=os.path.relpath(p,src)[:-3].split(os.sep)
                if rel[-1] in('mod','lib','main'): rel=rel[:-1]
                out[tuple(rel)]=p
    return out
allc=[]
for base in ('crates','bins'):
    for c in sorted(os.listdir(os.path.join(root,base))):
        src=os.path.join(root,base,c,'src')
        if not os.path.isdir(src): continue
        mods=files(src)
        maps={m for m,p in mods.items() if os.path.basename(p) in('mod.rs','lib.rs','main.rs')}
        g={m:set() for m in mods}
        for m,p in mods.items():
            t=open(p).read(); i=t.find('#[cfg(test)]'); t=t if i<0 else t[:i]
            here = m if os.path.basename(p) in ('mod.rs','lib.rs') else m[:-1]  # module dir for super resolution
            paths=[]
            for u in re.findall(r'use\s+((?:crate|super|self)(?:::\w+)*)(?:::\{([^}]*)\})?',t):
                head,inner=u
                parts=[head] if not inner else [head+'::'+x.strip().split(' as ')[0] for x in inner.split(',') if x.strip()]
                paths+=parts
            paths+=re.findall(r'(?<![\w:])((?:crate|super)(?:::\w+)+)',t)
            for q in paths:
                segs=q.split('::')
                if segs[0]=='crate': base_=(); segs=segs[1:]
                else:
                    base_=list(m if os.path.basename(p) in ('mod.rs','lib.rs') else m)
                    # `super` from file module m refers to parent of m
                    while segs and segs[0] in('super','self'):
                        if segs[0]=='super': base_=base_[:-1]
                        segs=segs[1:]
                    base_=tuple(base_)
                full=tuple(base_)+tuple(segs)
                for k in range(len(full),0,-1):
                    if full[:k] in mods and full[:k]!=m:
                        g[m].add(full[:k]); break
        gg={m:{t for t in e if t not in maps} for m,e in g.items() if m not in maps}
        # find cycles via SCC
        idx,low,st,on,cnt,res={}, {}, [], set(), [0], []
        def sc(v):
            idx[v]=low[v]=cnt[0];cnt[0]+=1;st.append(v);on.add(v)
            for w in gg.get(v,()):
                if w not in idx: sc(w); low[v]=min(low[v],low[w])
                elif w in on: low[v]=min(low[v],idx[w])
            if low[v]==idx[v]:
                comp=[]
                while True:
                    w=st.pop();on.discard(w);comp.append(w)
                    if w==v:break
                if len(comp)>1: res.append(sorted(mods[x] for x in comp))
        for v in gg:
            if v not in idx: sc(v)
        allc+=res
print(allc if allc else "no circles (crate:: and super:: paths)")
