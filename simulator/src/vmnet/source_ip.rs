//! Reading what vmnet's source-IPv4 rule needs from a written frame (vmnet.md §0.3, §1.8).

use std::net::Ipv4Addr;

use etherparse::{EtherType, Ethernet2Slice, Ipv4HeaderSlice, SingleVlanSlice};
use ndk_model::ethernet::MacAddress;

/// VLAN tags looked through before giving up (single and double tagging).
const VLAN_TAGS_MAX: usize = 2;

/// What the source-IPv4 rule sees in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameSource {
    /// Not IPv4 (ARP, IPv6, anything else): the rule does not apply.
    NotIpv4,
    /// An IPv4 packet from `ip`, in a frame from `mac`.
    Ipv4 {
        /// The Ethernet source address.
        mac: MacAddress,
        /// The IPv4 source address.
        ip: Ipv4Addr,
    },
    /// The EtherType says IPv4 but the header does not parse (too short, wrong version or
    /// header length): no source can be shown to be the lease, so the rule drops it. Real
    /// vmnet's handling is UNCONFIRMED.
    MalformedIpv4,
}

/// Classifies `frame` (a whole Ethernet frame without FCS) for the source-IPv4 rule, looking
/// through up to [`VLAN_TAGS_MAX`] VLAN tags.
pub(crate) fn frame_source(frame: &[u8]) -> FrameSource {
    let Ok(eth) = Ethernet2Slice::from_slice_without_fcs(frame) else {
        return FrameSource::NotIpv4; // shorter than a header: refused by write already
    };
    let mac = MacAddress(eth.source());
    let mut ether_type = eth.ether_type();
    let mut payload = eth.payload_slice();
    for _ in 0..VLAN_TAGS_MAX {
        if !matches!(
            ether_type,
            EtherType::VLAN_TAGGED_FRAME
                | EtherType::PROVIDER_BRIDGING
                | EtherType::VLAN_DOUBLE_TAGGED_FRAME
        ) {
            break;
        }
        let Ok(vlan) = SingleVlanSlice::from_slice(payload) else {
            return FrameSource::NotIpv4;
        };
        ether_type = vlan.ether_type();
        payload = vlan.payload_slice();
    }
    if ether_type != EtherType::IPV4 {
        return FrameSource::NotIpv4;
    }
    match Ipv4HeaderSlice::from_slice(payload) {
        Ok(header) => FrameSource::Ipv4 {
            mac,
            ip: header.source_addr(),
        },
        Err(_) => FrameSource::MalformedIpv4,
    }
}

#[cfg(test)]
mod tests {
    use etherparse::PacketBuilder;

    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 7];

    fn udp_from(src: [u8; 4]) -> Vec<u8> {
        let builder = PacketBuilder::ethernet2(MAC, [0xff; 6])
            .ipv4(src, [192, 168, 64, 1], 64)
            .udp(68, 67);
        let mut out = Vec::new();
        builder.write(&mut out, &[1, 2, 3]).unwrap();
        out
    }

    #[test]
    fn reads_mac_and_ipv4_source() {
        assert_eq!(
            frame_source(&udp_from([192, 168, 64, 5])),
            FrameSource::Ipv4 {
                mac: MacAddress(MAC),
                ip: Ipv4Addr::new(192, 168, 64, 5)
            }
        );
    }

    #[test]
    fn looks_through_a_vlan_tag() {
        let plain = udp_from([10, 0, 0, 9]);
        let mut tagged = plain[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        tagged.extend_from_slice(&plain[12..]);
        assert!(matches!(
            frame_source(&tagged),
            FrameSource::Ipv4 { ip, .. } if ip == Ipv4Addr::new(10, 0, 0, 9)
        ));
    }

    #[test]
    fn arp_ipv6_and_broken_ipv4() {
        let mut arp = udp_from([1, 2, 3, 4]);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(frame_source(&arp), FrameSource::NotIpv4);
        let mut v6 = udp_from([1, 2, 3, 4]);
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(frame_source(&v6), FrameSource::NotIpv4);
        let mut bad_version = udp_from([1, 2, 3, 4]);
        bad_version[14] = 0x65;
        assert_eq!(frame_source(&bad_version), FrameSource::MalformedIpv4);
        let short = &udp_from([1, 2, 3, 4])[..20];
        assert_eq!(frame_source(short), FrameSource::MalformedIpv4);
        assert_eq!(frame_source(&[0u8; 10]), FrameSource::NotIpv4);
    }
}
