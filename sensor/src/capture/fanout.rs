//! A kernel fanout group (`PACKET_FANOUT`) over several libpcap sockets on one interface.
//!
//! Live capture on several threads opens one libpcap handle per thread and joins their
//! `AF_PACKET` sockets into one fanout group, so the kernel hands each received frame to
//! exactly one of them. The kernel's own flow hash (`PACKET_FANOUT_HASH`) is not what the
//! sensor needs: its tunnel table must see every packet of a tunnel, both outer directions,
//! in one thread. The group therefore uses `PACKET_FANOUT_CBPF` with our classic BPF program
//! ([`outer_pair_program`]): a seeded hash of the *outermost* IPv4 or IPv6 address pair,
//! symmetric (XOR of source and destination), after up to two in-band VLAN tags (the first
//! tag is already in `skb->vlan_tci`). Frames that are not IP (ARP, MPLS, PPPoE, truncated)
//! go to the first socket. The kernel takes the program's result modulo the group size.
//!
//! The only `unsafe` of live capture is [`setsockopt`], the one `libc::setsockopt` call (and
//! its `getsockopt` twin) on a descriptor libpcap owns, with the reason written there.

use std::os::fd::{AsRawFd, RawFd};

/// `SOL_PACKET` option: join a fanout group (`linux/if_packet.h`).
const PACKET_FANOUT: libc::c_int = 18;
/// `SOL_PACKET` option: the program of a `PACKET_FANOUT_CBPF` group.
const PACKET_FANOUT_DATA: libc::c_int = 22;
/// Fanout mode: a classic BPF program picks the socket.
const PACKET_FANOUT_CBPF: u32 = 6;
/// Fanout flag: the kernel picks a group id no one uses (Linux 4.3).
const PACKET_FANOUT_FLAG_UNIQUEID: u32 = 0x2000;

/// Odd 32-bit multiplier of the program's final mix (the golden ratio).
const MIX: u32 = 0x9e37_79b1;

/// Errors of building the group; each names the step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FanoutError {
    /// A socket option was refused.
    #[error("{step}: {source}")]
    SockOpt {
        /// What was being done.
        step: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// One classic BPF instruction (`struct sock_filter`), built without `unsafe`.
pub type Insn = libc::sock_filter;

fn stmt(code: u32, k: u32) -> Insn {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> Insn {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// A load relative to the network header (`SKF_NET_OFF`): where the kernel left it after the
/// link header and the offloaded VLAN tag, whatever the link type.
fn net(offset: u32) -> u32 {
    (libc::SKF_NET_OFF as u32).wrapping_add(offset)
}

const LD_H_PROTO: u32 = libc::BPF_LD | libc::BPF_H | libc::BPF_ABS;
const LD_W_IND: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_IND;
const LD_H_IND: u32 = libc::BPF_LD | libc::BPF_H | libc::BPF_IND;
const JEQ: u32 = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
const JA: u32 = libc::BPF_JMP | libc::BPF_JA;
const RET_K: u32 = libc::BPF_RET | libc::BPF_K;
const RET_A: u32 = libc::BPF_RET | libc::BPF_A;
const LDX_IMM: u32 = libc::BPF_LDX | libc::BPF_W | libc::BPF_IMM;
const LDX_MEM: u32 = libc::BPF_LDX | libc::BPF_W | libc::BPF_MEM;
const LD_MEM: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_MEM;
const ST: u32 = libc::BPF_ST;
const TAX: u32 = libc::BPF_MISC | libc::BPF_TAX;
const TXA: u32 = libc::BPF_MISC | libc::BPF_TXA;
const XOR_X: u32 = libc::BPF_ALU | libc::BPF_XOR | libc::BPF_X;
const XOR_K: u32 = libc::BPF_ALU | libc::BPF_XOR | libc::BPF_K;
const ADD_X: u32 = libc::BPF_ALU | libc::BPF_ADD | libc::BPF_X;
const ADD_K: u32 = libc::BPF_ALU | libc::BPF_ADD | libc::BPF_K;
const MUL_K: u32 = libc::BPF_ALU | libc::BPF_MUL | libc::BPF_K;
const RSH_K: u32 = libc::BPF_ALU | libc::BPF_RSH | libc::BPF_K;

/// Scratch words: the offset of the IP header past in-band tags, the source address and the
/// destination address (each folded to 32 bits), and the running hash.
const M_OFFSET: u32 = 0;
const M_SRC: u32 = 1;
const M_HASH: u32 = 2;
const M_DST: u32 = 3;

/// Second odd multiplier of the final mix (murmur3's `fmix32`).
const MIX2: u32 = 0x85eb_ca6b;

/// The fanout program: `h(src) + h(dst)` with `h(x) = (x ^ seed) * MIX`, then mixed, where an
/// IPv6 address is first folded to 32 bits (the XOR of its words). The sum makes it equal
/// for both directions of an outer pair; hashing each address before the sum keeps pairs
/// that share their differing bits apart (a plain `src ^ dst` gives every pair
/// `10.1.i.1`/`10.1.i.2` the same value). 0 for a frame that is not IPv4 or IPv6.
pub fn outer_pair_program(seed: u32) -> Vec<Insn> {
    let mut p = Vec::with_capacity(96);
    // A = skb->protocol (the ethertype after the offloaded tag), X = 0.
    p.push(stmt(
        LD_H_PROTO,
        (libc::SKF_AD_OFF + libc::SKF_AD_PROTOCOL) as u32,
    ));
    p.push(stmt(LDX_IMM, 0));
    // Up to two in-band tags (QinQ): each is TCI then the next ethertype, 4 bytes.
    for _ in 0..2 {
        // Not a tag: skip the 6 instructions after the second test.
        p.push(jump(JEQ, 0x8100, 1, 0));
        p.push(jump(JEQ, 0x88a8, 0, 6));
        p.push(stmt(LD_H_IND, net(2)));
        p.push(stmt(ST, M_HASH));
        p.push(stmt(TXA, 0));
        p.push(stmt(ADD_K, 4));
        p.push(stmt(TAX, 0));
        p.push(stmt(LD_MEM, M_HASH));
    }
    // Keep the offset in M[0] (X is needed for the XORs of IPv6), then dispatch.
    p.push(stmt(ST, M_HASH));
    p.push(stmt(TXA, 0));
    p.push(stmt(ST, M_OFFSET));
    p.push(stmt(LD_MEM, M_HASH));
    // IPv4: source at 12, destination at 16.
    let mut v4 = vec![
        stmt(LD_W_IND, net(12)),
        stmt(ST, M_SRC),
        stmt(LD_W_IND, net(16)),
        stmt(ST, M_DST),
    ];
    // IPv6: source at 8..24, destination at 24..40, each folded by XOR of its 4 words.
    let mut v6 = Vec::new();
    for (start, slot) in [(8u32, M_SRC), (24, M_DST)] {
        v6.push(stmt(LDX_MEM, M_OFFSET));
        v6.push(stmt(LD_W_IND, net(start)));
        v6.push(stmt(ST, slot));
        for word in 1..4u32 {
            v6.push(stmt(LDX_MEM, M_OFFSET));
            v6.push(stmt(LD_W_IND, net(start + 4 * word)));
            v6.push(stmt(LDX_MEM, slot));
            v6.push(stmt(XOR_X, 0));
            v6.push(stmt(ST, slot));
        }
    }
    // The IPv4 block ends with a jump over the IPv6 block to the mix.
    v4.push(jump(JA, v6.len() as u32, 0, 0));
    // Dispatch: IPv4 after `ret 0`, IPv6 after the IPv4 block, anything else 0.
    p.push(jump(JEQ, 0x0800, 2, 0));
    p.push(jump(JEQ, 0x86dd, v4.len() as u8 + 1, 0));
    p.push(stmt(RET_K, 0));
    p.extend(v4);
    p.extend(v6);
    // h(src) + h(dst), then fmix: v ^= v >> 15; v *= MIX2; return v >> 16.
    p.extend([
        stmt(LD_MEM, M_SRC),
        stmt(XOR_K, seed),
        stmt(MUL_K, MIX),
        stmt(ST, M_HASH),
        stmt(LD_MEM, M_DST),
        stmt(XOR_K, seed),
        stmt(MUL_K, MIX),
        stmt(LDX_MEM, M_HASH),
        stmt(ADD_X, 0),
        stmt(ST, M_HASH),
        stmt(RSH_K, 15),
        stmt(LDX_MEM, M_HASH),
        stmt(XOR_X, 0),
        stmt(MUL_K, MIX2),
        stmt(RSH_K, 16),
        stmt(RET_A, 0),
    ]);
    p
}

/// What [`outer_pair_program`] computes for an outer pair, each address already folded to
/// 32 bits (big-endian words; IPv6: the XOR of its four words).
pub fn outer_pair_hash(src: u32, dst: u32, seed: u32) -> u32 {
    let h = |x: u32| (x ^ seed).wrapping_mul(MIX);
    let v = h(src).wrapping_add(h(dst));
    let v = v ^ (v >> 15);
    v.wrapping_mul(MIX2) >> 16
}

/// Joins the sockets of `fds` (each bound to the same interface by libpcap) into one new
/// fanout group steered by [`outer_pair_program`]. Returns the group id the kernel chose.
pub fn join(fds: &[&dyn AsRawFd], seed: u32) -> Result<u16, FanoutError> {
    let Some((first, rest)) = fds.split_first() else {
        return Ok(0);
    };
    // The first socket creates a group with an id no other group uses (two sensors on one
    // interface must not share one), then the others join that id.
    let arg = (PACKET_FANOUT_CBPF | PACKET_FANOUT_FLAG_UNIQUEID) << 16;
    setsockopt(first.as_raw_fd(), PACKET_FANOUT, &arg).map_err(|source| FanoutError::SockOpt {
        step: "creating the fanout group (PACKET_FANOUT, Linux 4.3 or later)",
        source,
    })?;
    let mut got = [0u8; 4];
    getsockopt(first.as_raw_fd(), PACKET_FANOUT, &mut got).map_err(|source| {
        FanoutError::SockOpt {
            step: "reading the fanout group id",
            source,
        }
    })?;
    let id = (u32::from_ne_bytes(got) & 0xffff) as u16;
    let program = outer_pair_program(seed);
    set_program(first.as_raw_fd(), &program)?;
    for fd in rest {
        let arg = u32::from(id) | (PACKET_FANOUT_CBPF << 16);
        setsockopt(fd.as_raw_fd(), PACKET_FANOUT, &arg).map_err(|source| FanoutError::SockOpt {
            step: "joining the fanout group",
            source,
        })?;
    }
    Ok(id)
}

/// Installs the group's program (`PACKET_FANOUT_DATA` on any member sets it for the group).
fn set_program(fd: RawFd, program: &[Insn]) -> Result<(), FanoutError> {
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // The kernel copies the instructions during the call (`bpf_prog_create_from_user`) and
    // never writes through the pointer; `program` outlives the call.
    setsockopt(fd, PACKET_FANOUT_DATA, &prog).map_err(|source| FanoutError::SockOpt {
        step: "installing the fanout program (PACKET_FANOUT_DATA)",
        source,
    })
}

/// `setsockopt(fd, SOL_PACKET, option, value)`, `value` passed as the C option struct it is
/// (an integer, a `sock_fprog`): its address and size, never its bytes, so the padding of a
/// struct is never read as bytes on our side.
#[allow(unsafe_code)] // The one system call libc has no safe form of: see SAFETY below.
fn setsockopt<T: Copy>(fd: RawFd, option: libc::c_int, value: &T) -> std::io::Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<T>())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `value` is a live `T` of `len` bytes, read by the kernel during the call only;
    // `fd` is a socket descriptor borrowed from an open libpcap handle (a closed or foreign
    // descriptor gives EBADF/ENOTSOCK, never undefined behaviour).
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            option,
            std::ptr::from_ref(value).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `getsockopt(fd, SOL_PACKET, option)` into `out`.
#[allow(unsafe_code)] // The twin of `setsockopt`: see SAFETY below.
fn getsockopt(fd: RawFd, option: libc::c_int, out: &mut [u8]) -> std::io::Result<()> {
    let mut len = libc::socklen_t::try_from(out.len())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `out` is a live, writable slice of `len` bytes and the kernel writes at most
    // `len` bytes into it, updating `len`, a live local.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            option,
            out.as_mut_ptr().cast(),
            &raw mut len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    //! The program is run here by a small interpreter of the instructions it uses, over
    //! annotated frames; the live tests (`tests/tests/fanout.rs`) run it in the kernel.
    use super::*;

    /// Runs `p` over a frame whose network header starts at `pkt[0]` (what `SKF_NET_OFF`
    /// loads see) with `skb->protocol = proto`. A load out of bounds returns 0, as in the
    /// kernel.
    fn run(p: &[Insn], proto: u16, pkt: &[u8]) -> u32 {
        let (mut a, mut x, mut m) = (0u32, 0u32, [0u32; 16]);
        let mut pc = 0usize;
        let load = |off: u32, size: usize| -> Option<u32> {
            let rel = off.wrapping_sub(libc::SKF_NET_OFF as u32) as usize;
            let b = pkt.get(rel..rel + size)?;
            Some(b.iter().fold(0u32, |v, &byte| (v << 8) | u32::from(byte)))
        };
        loop {
            let i = p[pc];
            pc += 1;
            let code = u32::from(i.code);
            match code {
                LD_H_PROTO if i.k == (libc::SKF_AD_OFF + libc::SKF_AD_PROTOCOL) as u32 => {
                    a = u32::from(proto);
                }
                LD_H_IND => match load(i.k.wrapping_add(x), 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_W_IND => match load(i.k.wrapping_add(x), 4) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LDX_IMM => x = i.k,
                LDX_MEM => x = m[i.k as usize],
                LD_MEM => a = m[i.k as usize],
                ST => m[i.k as usize] = a,
                TAX => x = a,
                TXA => a = x,
                XOR_X => a ^= x,
                XOR_K => a ^= i.k,
                ADD_K => a = a.wrapping_add(i.k),
                ADD_X => a = a.wrapping_add(x),
                MUL_K => a = a.wrapping_mul(i.k),
                RSH_K => a >>= i.k,
                JEQ => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                JA => pc += i.k as usize,
                RET_K => return i.k,
                RET_A => return a,
                other => panic!("instruction {other:#x} not interpreted"),
            }
        }
    }

    // IPv4 header, 20 bytes: version/IHL, TOS, length, id, flags, TTL 64, UDP, checksum,
    // source 10.0.0.1, destination 203.0.113.50.
    const V4: [u8; 20] = [
        0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 203, 0, 113, 50,
    ];

    fn swapped_v4() -> [u8; 20] {
        let mut s = V4;
        s[12..16].copy_from_slice(&V4[16..20]);
        s[16..20].copy_from_slice(&V4[12..16]);
        s
    }

    // IPv6 header, 40 bytes: version 6, payload 0, next header UDP, hop limit 64, source
    // 2001:db8::1, destination 2001:db8::50.
    fn v6(src_last: u8, dst_last: u8) -> [u8; 40] {
        let mut h = [0u8; 40];
        h[0] = 0x60;
        h[6] = 17;
        h[7] = 64;
        h[8..10].copy_from_slice(&[0x20, 0x01]);
        h[10..12].copy_from_slice(&[0x0d, 0xb8]);
        h[23] = src_last;
        h[24..26].copy_from_slice(&[0x20, 0x01]);
        h[26..28].copy_from_slice(&[0x0d, 0xb8]);
        h[39] = dst_last;
        h
    }

    #[test]
    fn both_directions_of_an_outer_pair_hash_alike() {
        let p = outer_pair_program(0x1234_5678);
        let there = run(&p, 0x0800, &V4);
        assert_eq!(there, run(&p, 0x0800, &swapped_v4()));
        assert_ne!(there, 0);
        // The program computes `outer_pair_hash`.
        let (a, b) = (
            u32::from_be_bytes([10, 0, 0, 1]),
            u32::from_be_bytes([203, 0, 113, 50]),
        );
        assert_eq!(there, outer_pair_hash(a, b, 0x1234_5678));
        // Another seed spreads the same pair differently.
        assert_ne!(there, run(&outer_pair_program(7), 0x0800, &V4));
        let (a, b) = (v6(1, 0x50), v6(0x50, 1));
        assert_eq!(run(&p, 0x86dd, &a), run(&p, 0x86dd, &b));
        assert_ne!(run(&p, 0x86dd, &a), run(&p, 0x86dd, &v6(1, 0x51)));
    }

    /// Pairs that differ in the same bits (`10.1.i.1` and `10.1.i.2` for each `i`) spread over
    /// the sockets: with 32 such pairs, both of two sockets and each of four get some.
    #[test]
    fn pairs_that_differ_alike_still_spread() {
        let p = outer_pair_program(0xdead_beef);
        let mut per2 = [0u32; 2];
        let mut per4 = [0u32; 4];
        for i in 0..32u8 {
            let mut h = V4;
            h[12..16].copy_from_slice(&[10, 1, i, 1]);
            h[16..20].copy_from_slice(&[10, 1, i, 2]);
            let v = run(&p, 0x0800, &h);
            per2[(v % 2) as usize] += 1;
            per4[(v % 4) as usize] += 1;
        }
        assert!(per2.iter().all(|&n| n >= 8), "{per2:?}");
        assert!(per4.iter().all(|&n| n >= 3), "{per4:?}");
    }

    #[test]
    fn in_band_vlan_tags_are_skipped() {
        let p = outer_pair_program(99);
        let plain = run(&p, 0x0800, &V4);
        // One in-band 802.1Q tag (VID 10) then IPv4; skb->protocol is the tag's TPID.
        let mut one = vec![0x00, 0x0a, 0x08, 0x00];
        one.extend_from_slice(&V4);
        assert_eq!(run(&p, 0x8100, &one), plain);
        // QinQ: an 802.1ad tag, then an 802.1Q tag, then IPv4.
        let mut two = vec![0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00];
        two.extend_from_slice(&V4);
        assert_eq!(run(&p, 0x88a8, &two), plain);
        // IPv6 behind a tag.
        let mut six = vec![0x00, 0x0a, 0x86, 0xdd];
        six.extend_from_slice(&v6(1, 0x50));
        assert_eq!(run(&p, 0x8100, &six), run(&p, 0x86dd, &v6(0x50, 1)));
    }

    #[test]
    fn frames_that_are_not_ip_or_are_cut_go_to_the_first_socket() {
        let p = outer_pair_program(99);
        // ARP.
        assert_eq!(run(&p, 0x0806, &[0u8; 28]), 0);
        // MPLS.
        assert_eq!(run(&p, 0x8847, &V4), 0);
        // An IPv4 header cut before its destination.
        assert_eq!(run(&p, 0x0800, &V4[..18]), 0);
        // An IPv6 header cut in its source.
        assert_eq!(run(&p, 0x86dd, &v6(1, 2)[..20]), 0);
        // A tag with nothing after it.
        assert_eq!(run(&p, 0x8100, &[0x00, 0x0a]), 0);
    }

    #[test]
    fn the_program_is_within_the_kernels_limits() {
        let p = outer_pair_program(1);
        // BPF_MAXINSNS is 4096; every jump stays inside the program.
        assert!(p.len() < 4096);
        for (pc, i) in p.iter().enumerate() {
            let code = u32::from(i.code);
            if code == JA {
                assert!(pc + 1 + (i.k as usize) < p.len());
            } else if code == JEQ {
                assert!(pc + 1 + usize::from(i.jt.max(i.jf)) < p.len());
            }
        }
        let last = p.last().map(|i| u32::from(i.code));
        assert_eq!(last, Some(RET_A));
    }
}
