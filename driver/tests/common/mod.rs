//! Shared test rig: a pool, the four queues, a registered Ethernet service and a
//! `VirtualEthernet<FakePort>` with the interface enabled.
#![allow(dead_code)]

use ndk_model::error::IoReturn;
use ndk_model::ethernet::{EthernetInterface, EthernetService, MacAddress};
use ndk_model::pool::{Owner, PacketBufferPool, PoolConfig};
use vnic_driver::attach::{attach, AttachError, AttachedNic};
use vnic_driver::nic::{NewError, NicConfig, VirtualEthernet};
use vnic_driver::port::fake::FakePort;
use vnic_driver::port::PortInfo;

pub const MAC: MacAddress = MacAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
pub const PEER: MacAddress = MacAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);

pub struct Rig {
    pub pool: PacketBufferPool,
    pub service: EthernetService,
    pub iface: EthernetInterface,
    pub nic: VirtualEthernet<FakePort>,
}

pub fn rig(info: PortInfo, queue_capacity: u32, config: NicConfig) -> Rig {
    try_rig(info, queue_capacity, config, 2048).unwrap()
}

pub fn try_rig(
    info: PortInfo,
    queue_capacity: u32,
    config: NicConfig,
    buffer_size_bytes: u32,
) -> Result<Rig, NewError> {
    let pool = PacketBufferPool::create(PoolConfig::new(
        *b"test",
        queue_capacity * 4 + 64,
        buffer_size_bytes,
    ))
    .unwrap();
    let attached = match attach(FakePort::new(info), &pool, queue_capacity, config) {
        Ok(a) => a,
        Err(AttachError::Nic(e)) => return Err(e),
        Err(e) => panic!("attach: {e}"),
    };
    let AttachedNic {
        nic,
        service,
        iface,
    } = attached;
    Ok(Rig {
        pool,
        service,
        iface,
        nic,
    })
}

pub fn default_rig() -> Rig {
    rig(PortInfo::vmnet_documented(MAC), 512, NicConfig::default())
}

/// An Ethernet frame to `dst` from PEER of `len_bytes` bytes, payload tagged with `tag`.
pub fn frame(dst: MacAddress, len_bytes: usize, tag: u8) -> Vec<u8> {
    let mut f = vec![0u8; len_bytes];
    let hdr = len_bytes.min(14);
    let mut h = [0u8; 14];
    h[..6].copy_from_slice(&dst.0);
    h[6..12].copy_from_slice(&PEER.0);
    h[12..14].copy_from_slice(&[0x08, 0x00]);
    f[..hdr].copy_from_slice(&h[..hdr]);
    for (i, b) in f.iter_mut().enumerate().skip(14) {
        *b = tag.wrapping_add(i as u8);
    }
    f
}

impl Rig {
    pub fn poll(&mut self) -> vnic_driver::nic::PollOutcome {
        self.nic.poll(self.service.link_mut()).unwrap()
    }

    /// Submits frames on Tx submission; returns how many were accepted.
    pub fn submit(&mut self, frames: &[Vec<u8>]) -> usize {
        submit(&self.pool, &mut self.iface, frames)
    }

    /// Posts `n` empty Rx buffers.
    pub fn post_rx(&mut self, n: usize) {
        for _ in 0..n {
            let p = self.pool.allocate(Owner::System).unwrap();
            let mut one: heapless::Vec<_, 1> = heapless::Vec::new();
            one.push(p).unwrap();
            self.iface
                .queues_mut()
                .rx_submission
                .enqueue_packets(&mut one);
            assert!(one.is_empty(), "rx submission full");
        }
    }

    /// Collects Tx completions: their statuses.
    pub fn tx_completions(&mut self) -> Vec<u32> {
        tx_completions(&self.pool, &mut self.iface)
    }

    /// Collects received frames.
    pub fn rx_frames(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let mut batch: heapless::Vec<_, 64> = heapless::Vec::new();
            let n = self
                .iface
                .queues_mut()
                .rx_completion
                .dequeue_packets(&mut batch, 64)
                .unwrap();
            if n == 0 {
                return out;
            }
            for p in batch {
                out.push(self.pool.packet(&p).unwrap().data().to_vec());
                self.pool.system_free(p).unwrap();
            }
        }
    }
}

pub const SUCCESS: u32 = IoReturn::Success as u32;

/// Submits frames on Tx submission; returns how many were accepted.
pub fn submit(pool: &PacketBufferPool, iface: &mut EthernetInterface, frames: &[Vec<u8>]) -> usize {
    let mut accepted = 0;
    for f in frames {
        let mut p = pool.allocate(Owner::System).unwrap();
        pool.packet_mut(&mut p).unwrap().write_frame(0, f).unwrap();
        let mut one: heapless::Vec<_, 1> = heapless::Vec::new();
        one.push(p).unwrap();
        let out = iface.queues_mut().tx_submission.enqueue_packets(&mut one);
        for p in one {
            pool.system_free(p).unwrap();
        }
        accepted += out.accepted as usize;
    }
    accepted
}

/// Collects Tx completions: their statuses.
pub fn tx_completions(pool: &PacketBufferPool, iface: &mut EthernetInterface) -> Vec<u32> {
    let mut out = Vec::new();
    loop {
        let mut batch: heapless::Vec<_, 64> = heapless::Vec::new();
        let n = iface
            .queues_mut()
            .tx_completion
            .dequeue_packets(&mut batch, 64)
            .unwrap();
        if n == 0 {
            return out;
        }
        for p in batch {
            out.push(pool.packet(&p).unwrap().completion_status());
            pool.system_free(p).unwrap();
        }
    }
}
