#!/usr/bin/python3
# Emulates tc_compute (kernels/gemm/igemm_main.cuh) with the PTX ISA's
# semantics of ldmatrix (.x4, optional .trans) and mma.m16n8k16 (fragment
# layouts), for several tile configs and every operand orientation, and checks
# that the accumulators land on A @ B at the epilogue's (row, column)
# coordinates. The index expressions are transcribed from tc_compute and the
# epilogue of tc_body: keep them in step when those change. No GPU needed:
#     python3 kernels/gemm/emu/frag_emu.py
import itertools, random
NAN=float('nan')
def swz(RC,row,chunk):
    if RC>=8: return chunk ^ (row & 7)
    if RC==4: return chunk ^ ((row>>1)&3)
    if RC==2: return chunk ^ ((row>>2)&1)
    return chunk
def tile_off(RC,row,col): return row*RC*8 + swz(RC,row,col>>3)*8 + (col&7)

def ldsm(smem, addrs, trans):
    # addrs[l]: element offset given by lane l; returns regs[lane][j] = (lo, hi)
    out=[[None]*4 for _ in range(32)]
    for j in range(4):
        rows=[addrs[8*j+r] for r in range(8)]
        for t in range(32):
            if not trans:
                base=rows[t//4]; out[t][j]=(smem[base+2*(t%4)], smem[base+2*(t%4)+1])
            else:
                out[t][j]=(smem[rows[2*(t%4)]+t//4], smem[rows[2*(t%4)+1]+t//4])
    return out

def mma(acc, a, b0, b1):
    # acc[lane][4]; a[lane][4] pairs; b0,b1 [lane] pairs
    A=[[0.0]*16 for _ in range(16)]; B=[[0.0]*8 for _ in range(16)]
    for t in range(32):
        g,q=t//4,t%4
        for e in range(2):
            A[g][2*q+e]=a[t][0][e]; A[g+8][2*q+e]=a[t][1][e]; A[g][2*q+8+e]=a[t][2][e]; A[g+8][2*q+8+e]=a[t][3][e]
            B[2*q+e][g]=b0[t][e]; B[2*q+8+e][g]=b1[t][e]
    D=[[sum(A[r][k]*B[k][c] for k in range(16)) for c in range(8)] for r in range(16)]
    for t in range(32):
        g,q=t//4,t%4
        acc[t][0]+=D[g][2*q]; acc[t][1]+=D[g][2*q+1]; acc[t][2]+=D[g+8][2*q]; acc[t][3]+=D[g+8][2*q+1]

def run(BM,BN,BK,WM,WN,A_KC,B_KC,rng):
    A=[[float(rng.randint(-3,3)) for _ in range(BK)] for _ in range(BM)]; Bm=[[float(rng.randint(-3,3)) for _ in range(BN)] for _ in range(BK)]
    As=[None]*(BM*BK); Bs=[None]*(BN*BK)
    for m in range(BM):
        for k in range(BK):
            As[tile_off(BK//8,m,k) if A_KC else tile_off(BM//8,k,m)]=A[m][k]
    for k in range(BK):
        for n in range(BN):
            Bs[tile_off(BK//8,n,k) if B_KC else tile_off(BN//8,k,n)]=Bm[k][n]
    assert None not in As and None not in Bs
    WTM,WTN=BM//WM,BN//WN; MI,NJ=WTM//16,WTN//8
    C=[[None]*BN for _ in range(BM)]
    for warp in range(WM*WN):
        wm0=(warp%WM)*WTM; wn0=(warp//WM)*WTN
        acc=[[[ [0.0]*4 for _ in range(32)] for j in range(NJ)] for i in range(MI)]
        for ks in range(BK//16):
            a=[]
            for i in range(MI):
                m0=wm0+i*16
                if A_KC: addrs=[tile_off(BK//8, m0+(l&15), ks*16+(l>>4)*8) for l in range(32)]
                else: addrs=[tile_off(BM//8, ks*16+((l>>3)>>1)*8+(l&7), m0+((l>>3)&1)*8) for l in range(32)]
                a.append(ldsm(As,addrs,not A_KC))
            b=[None]*NJ
            for jj in range(NJ//2):
                n0=wn0+jj*16
                if B_KC: addrs=[tile_off(BK//8, n0+((l>>3)>>1)*8+(l&7), ks*16+((l>>3)&1)*8) for l in range(32)]
                else: addrs=[tile_off(BN//8, ks*16+((l>>3)&1)*8+(l&7), n0+((l>>3)>>1)*8) for l in range(32)]
                r=ldsm(Bs,addrs,B_KC==False)
                b[2*jj]=([r[t][0] for t in range(32)],[r[t][1] for t in range(32)])
                b[2*jj+1]=([r[t][2] for t in range(32)],[r[t][3] for t in range(32)])
            for i in range(MI):
                for j in range(NJ):
                    mma(acc[i][j], a[i], b[j][0], b[j][1])
        for i in range(MI):
            for h in range(2):
                for j in range(NJ):
                    for t in range(32):
                        g,q=t//4,t%4
                        m=wm0+i*16+g+8*h; n=wn0+j*8+2*q
                        C[m][n]=acc[i][j][t][2*h]; C[m][n+1]=acc[i][j][t][2*h+1]
    ref=[[sum(A[m][k]*Bm[k][n] for k in range(BK)) for n in range(BN)] for m in range(BM)]
    ok=C==ref
    return ok
rng=random.Random(1)
for cfg in [(128,128,32,2,4),(128,64,32,2,2),(64,64,32,2,2),(64,64,16,2,2),(128,128,64,2,4)]:
    for akc,bkc in itertools.product([True,False],[True,False]):
        print(cfg,'A_KC',akc,'B_KC',bkc,'OK' if run(*cfg,akc,bkc,rng) else 'MISMATCH')
