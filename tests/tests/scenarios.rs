//! Issue 3's scenarios: the vnic driver and the OS-stack model on simulated vmnet networks.
//! Each runs deterministically (one thread, seeded, simulated clock) and threaded (stack,
//! driver and network on their own threads), and both runs must pass every checker:
//! conservation per hop, the pool full at quiescence, driver counters, frame order (unless
//! injected) and transfer digests.

use std::net::{Ipv4Addr, SocketAddrV4};

use vnic_sim::gateway::GatewayConfig;
use vnic_sim::netconfig::{PortForward, Protocol};
use vnic_sim::pattern::Digest;
use vnic_sim::stack::Addressing;
use vnic_sim::vmnet::{mac_from_interface_id, GuestId, OperatingMode, StartError, VmnetReturn};
use vnic_sim::world::network::FlapTrigger;
use vnic_sim::world::script::{self, HostStep, Script, Step, Target};
use vnic_sim::world::seeds::Outcome;
use vnic_sim::world::{node_interface_id, BuildError, NodeSpec, World, WorldConfig};
use vnic_tests::run_both;

const MIB: u64 = 1024 * 1024;

fn lease_ping_send(target: Target, total_bytes: u64) -> Script {
    script::lease_ping_send(target, total_bytes, 77)
}

fn assert_streams_intact(o: &Outcome, streams_min: usize) {
    let transfers = o.world.transfers();
    assert!(
        transfers.len() >= streams_min,
        "{} streams",
        transfers.len()
    );
    for (expected, got) in transfers {
        let (name, d) = got.expect("a receiver saw the stream");
        assert_eq!(d, expected, "{name}");
    }
}

fn leased(o: &Outcome, node: usize) -> Ipv4Addr {
    o.world.stacks[node].stack.ipv4().expect("leased")
}

#[test]
fn shared_mode_lease_ping_and_10_mib_to_an_outside_host() {
    let (det, thr) = run_both(|| {
        WorldConfig::new(
            3,
            OperatingMode::Shared,
            1,
            &lease_ping_send(Target::Outside, 10 * MIB),
        )
    });
    for o in [&det, &thr] {
        assert_streams_intact(o, 1);
        let ip = leased(o, 0);
        assert!(
            ip.octets()[..3] == [192, 168, 64] && ip.octets()[3] >= 2,
            "lease {ip} in 192.168.64.0/24"
        );
        let g = o.world.net.gateway.counters();
        assert!(g.nat_translated_out > 0 && g.nat_translated_in > 0, "{g:?}");
        assert!(o.world.drivers[0].nic.counters().tx.bytes > 10 * MIB);
    }
}

#[test]
fn host_mode_lease_ping_and_10_mib_to_the_host() {
    let (det, thr) = run_both(|| {
        WorldConfig::new(
            4,
            OperatingMode::Host,
            1,
            &lease_ping_send(Target::Gateway, 10 * MIB),
        )
    });
    for o in [&det, &thr] {
        assert_streams_intact(o, 1);
        assert_eq!(
            o.world.net.gateway.counters().nat_translated_out,
            0,
            "no NAT in host mode"
        );
    }
}

#[test]
fn four_interfaces_on_one_network_reach_each_other() {
    let make = || {
        let mut config = WorldConfig::new(5, OperatingMode::Shared, 4, &Vec::new());
        for (i, n) in config.nodes.iter_mut().enumerate() {
            let next = (i + 1) % 4;
            n.script = vec![
                Step::AwaitLease,
                Step::TcpSink { port: 5001 },
                Step::Ping {
                    target: Target::Node(next),
                    count: 3,
                    replies_min: 3,
                    interval_ns: 10_000_000,
                },
                Step::TcpSend {
                    target: Target::Node(next),
                    port: 5001,
                    total_bytes: 256 * 1024,
                    seed: 100 + i as u64,
                },
                Step::AwaitSink { port: 5001 },
            ];
        }
        config
    };
    let (det, thr) = run_both(make);
    for o in [&det, &thr] {
        assert_streams_intact(o, 4);
        let addrs: Vec<_> = (0..4).map(|i| leased(o, i)).collect();
        let mut unique = addrs.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 4, "four distinct leases: {addrs:?}");
    }
}

fn build_error(nodes: Vec<NodeSpec>) -> Option<(usize, StartError)> {
    let mut config = WorldConfig::new(6, OperatingMode::Shared, 0, &Vec::new());
    config.nodes = nodes;
    match World::build(config) {
        Ok(_) => None,
        Err(BuildError::Start { node, error }) => Some((node, error)),
        Err(e) => panic!("unexpected: {e}"),
    }
}

fn spec(guest: u32, i: usize) -> NodeSpec {
    NodeSpec {
        guest: GuestId(guest),
        interface_id: node_interface_id(6, i),
        script: vec![Step::AwaitLease],
        addressing: None,
    }
}

#[test]
fn the_33rd_interface_and_the_5th_per_guest_fail_with_vmnets_codes() {
    // 32 interfaces (4 per guest) start; the 33rd fails.
    let mut nodes: Vec<_> = (0..33).map(|i| spec(i as u32 / 4, i)).collect();
    let (node, error) = build_error(nodes.clone()).expect("33 interfaces must fail");
    assert_eq!(node, 32);
    assert!(
        matches!(error, StartError::TooManyInterfaces { .. }),
        "{error:?}"
    );
    assert_eq!(error.code(), VmnetReturn::Failure);
    nodes.truncate(32);
    assert_eq!(build_error(nodes), None, "32 interfaces start");
    // The 5th interface of one guest fails.
    let (node, error) = build_error((0..5).map(|i| spec(0, i)).collect()).expect("5 per guest");
    assert_eq!(node, 4);
    assert!(
        matches!(error, StartError::TooManyInterfacesForGuest { .. }),
        "{error:?}"
    );
    // Four of one guest work, both ways.
    let (det, thr) = run_both(|| {
        let mut config = WorldConfig::new(6, OperatingMode::Shared, 0, &Vec::new());
        config.nodes = (0..4).map(|i| spec(0, i)).collect();
        config
    });
    for o in [&det, &thr] {
        assert!((0..4).all(|i| o.world.stacks[i].stack.ipv4().is_some()));
    }
}

#[test]
fn a_spoofed_source_ip_is_dropped_silently_and_counted() {
    let make = || {
        let mut config = WorldConfig::new(7, OperatingMode::Shared, 2, &Vec::new());
        // Node 0 leases normally and pings the gateway.
        config.nodes[0].script = lease_ping_send(Target::Outside, 64 * 1024);
        // Node 1 never asks DHCP and claims an address vmnet never leased to it.
        config.nodes[1].addressing = Some(Addressing::Static {
            cidr: smoltcp::wire::Ipv4Cidr::new(Ipv4Addr::new(192, 168, 64, 200), 24),
            gateway: Some(Ipv4Addr::new(192, 168, 64, 1)),
        });
        config.nodes[1].script = vec![Step::Ping {
            target: Target::Gateway,
            count: 5,
            replies_min: 0,
            interval_ns: 10_000_000,
        }];
        config
    };
    let (det, thr) = run_both(make);
    for o in [&det, &thr] {
        let spoofer = &o.world.stacks[1];
        let pings = spoofer.script.outcomes()[0]
            .report
            .as_ref()
            .unwrap()
            .pings_received;
        assert_eq!(pings, 0, "the gateway never saw the spoofed pings");
        let handle = o.world.net.actors[1].handle;
        let dropped = o
            .world
            .net
            .vmnet
            .counters(handle)
            .unwrap()
            .dropped_source_ip_frames;
        assert!(dropped >= 5, "vmnet counted {dropped} spoofed frames");
        // The writes looked successful to the NIC: vmnet drops silently.
        assert_eq!(o.world.drivers[1].nic.counters().tx.dropped_total(), 0);
        // The honest node is untouched.
        assert_eq!(
            o.world
                .net
                .vmnet
                .counters(o.world.net.actors[0].handle)
                .unwrap()
                .dropped_source_ip_frames,
            0
        );
    }
}

#[test]
fn a_9000_byte_mtu_network_carries_jumbo_frames() {
    let (det, thr) = run_both(|| {
        let mut config = WorldConfig::new(
            8,
            OperatingMode::Shared,
            1,
            &lease_ping_send(Target::Outside, 4 * MIB),
        );
        config.mtu_bytes = Some(9000);
        config
    });
    for o in [&det, &thr] {
        assert_streams_intact(o, 1);
        let nic = &o.world.drivers[0].nic;
        assert_eq!(nic.port_info().max_packet_size_bytes, 9014);
        let tx = nic.counters().tx;
        assert!(
            tx.bytes / tx.frames.max(1) > 1514,
            "mean frame {} B: jumbo frames were used",
            tx.bytes / tx.frames.max(1)
        );
    }
}

#[test]
fn a_port_forward_reaches_a_guest_service_from_the_host() {
    let guest_ip = Ipv4Addr::new(192, 168, 64, 50);
    let make = move || {
        let mut config = WorldConfig::new(9, OperatingMode::Shared, 1, &Vec::new());
        let mac = mac_from_interface_id(config.nodes[0].interface_id);
        let mut gw = GatewayConfig::shared_default();
        if let Some(dhcp) = gw.dhcp.as_mut() {
            dhcp.reservations.push((mac, guest_ip));
        }
        gw.port_forwards.push(PortForward {
            protocol: Protocol::Tcp,
            internal_address: std::net::IpAddr::V4(guest_ip),
            internal_port: 8080,
            external_port: 2222,
            external_address: None,
        });
        config.gateway = Some(gw);
        config.nodes[0].script = vec![
            Step::AwaitLease,
            Step::TcpSink { port: 8080 },
            Step::AwaitSink { port: 8080 },
        ];
        config.host = vec![HostStep::TcpSend {
            after_node: 0,
            dst: SocketAddrV4::new(vnic_sim::gateway::EXTERNAL_ADDR, 2222),
            total_bytes: 512 * 1024,
            seed: 4242,
        }];
        config
    };
    let (det, thr) = run_both(make);
    for o in [&det, &thr] {
        assert_eq!(leased(o, 0), guest_ip, "the reservation was honoured");
        assert_streams_intact(o, 1);
        assert!(o.world.net.gateway.counters().forward_hits > 0);
    }
}

#[test]
fn a_link_flap_mid_transfer_then_recovery() {
    let make = || {
        let mut config = WorldConfig::new(
            10,
            OperatingMode::Shared,
            1,
            &lease_ping_send(Target::Outside, 4 * MIB),
        );
        // Down for 300 ms once 1 MiB of the 4 MiB has gone: mid-transfer in either mode.
        config.flaps = vec![FlapTrigger {
            node: 0,
            after_tx_bytes: MIB,
            down_ns: 300_000_000,
        }];
        config
    };
    let (det, thr) = run_both(make);
    for o in [&det, &thr] {
        assert_streams_intact(o, 1);
        let c = o.world.net.actors[0].counters();
        assert_eq!(c.forced_flaps, 1);
        let lost = c.dropped_link_down_tx_frames + c.dropped_link_down_rx_frames;
        assert!(
            lost > 0,
            "the flap dropped frames (it happened mid-transfer): {c:?}"
        );
        // The driver saw the link go down and come back.
        let events = o.world.drivers[0].nic.port().counters().events_polled;
        assert!(events >= 2, "{events} link events reached the driver");
    }
}

#[test]
fn pool_exhaustion_applies_backpressure_without_loss() {
    let (det, thr) = run_both(|| {
        let mut config = WorldConfig::new(
            11,
            OperatingMode::Shared,
            1,
            &lease_ping_send(Target::Outside, MIB),
        );
        config.faults.stack.pool_packets = Some(24);
        config
    });
    for o in [&det, &thr] {
        assert_streams_intact(o, 1);
        let s = o.world.stacks[0].stack.counters();
        assert!(s.tx_refused_no_packet > 0, "the pool ran dry: {s:?}");
        let d = o.world.drivers[0].nic.counters();
        assert_eq!(d.tx.dropped_total(), 0, "no frame was lost: {d:?}");
        assert_eq!(d.rx.dropped_total(), 0, "no frame was lost: {d:?}");
    }
}

#[test]
fn oversize_and_runt_frames_get_counted_drops() {
    let make = || {
        let mut config = WorldConfig::new(
            12,
            OperatingMode::Shared,
            1,
            &lease_ping_send(Target::Outside, 64 * 1024),
        );
        // Frames for the NIC straight from the wire: a runt, and one bigger than the port's
        // max packet size.
        let mut runt = vec![0xffu8; 10];
        runt[6..10].copy_from_slice(&[2, 0, 0, 1]);
        let mut oversize = vec![0xffu8; 1600];
        oversize[12..14].copy_from_slice(&[0x08, 0x00]);
        config.inject_to_nic = vec![(0, runt), (0, oversize)];
        // And from the OS: a runt and an oversize frame on Tx submission.
        config.nodes[0]
            .script
            .insert(1, Step::RawFrame { len_bytes: 9 });
        config.nodes[0]
            .script
            .insert(2, Step::RawFrame { len_bytes: 1600 });
        config
    };
    let (det, thr) = run_both(make);
    for o in [&det, &thr] {
        assert_streams_intact(o, 1);
        let rx = o.world.drivers[0].nic.counters().rx;
        assert_eq!(rx.dropped_runt, 1, "the driver counts the runt: {rx:?}");
        // vmnet never hands over a frame above max_packet_size, and neither does the port:
        // it refuses the oversize frame at its boundary and counts it.
        assert_eq!(o.world.net.actors[0].counters().injected_refused_frames, 1);
        assert_eq!(o.world.net.actors[0].wire.counters().rx_refused_too_big, 1);
        let tx = o.world.drivers[0].nic.counters().tx;
        assert_eq!(
            (tx.dropped_runt, tx.dropped_packet_too_big),
            (1, 1),
            "{tx:?}"
        );
        // The OS got both back with an error status.
        let s = o.world.stacks[0].stack.counters();
        assert_eq!(s.tx_completed_error, 2, "{s:?}");
    }
}

#[test]
fn a_seed_reproduces_its_run() {
    let a = vnic_sim::world::seeds::run_seed(31).unwrap();
    let b = vnic_sim::world::seeds::run_seed(31).unwrap();
    assert_eq!(a.world.now_ns, b.world.now_ns);
    assert_eq!(a.world.rounds, b.world.rounds);
    assert_eq!(
        a.world.drivers[0].nic.counters(),
        b.world.drivers[0].nic.counters()
    );
    let _ = Digest::new();
}

#[test]
fn bridged_mode_leases_from_the_lan_router_and_reaches_a_lan_host() {
    let lan_host = Ipv4Addr::new(192, 168, 1, vnic_sim::gateway::LAN_HOST_OCTET);
    let (det, thr) = run_both(|| {
        WorldConfig::new(
            13,
            OperatingMode::Bridged,
            1,
            &lease_ping_send(Target::Addr(lan_host), MIB),
        )
    });
    for o in [&det, &thr] {
        assert_streams_intact(o, 1);
        let ip = leased(o, 0);
        assert_eq!(ip.octets()[..3], [192, 168, 1], "a LAN lease: {ip}");
        assert_eq!(
            o.world.net.gateway.counters().nat_translated_out,
            0,
            "no vmnet NAT when bridged"
        );
    }
}

#[test]
fn an_interface_id_gives_the_same_mac_in_every_run_and_mode() {
    let id = node_interface_id(99, 0);
    let make = |seed: u64| {
        let mut config = WorldConfig::new(
            seed,
            OperatingMode::Shared,
            1,
            &lease_ping_send(Target::Gateway, 0),
        );
        config.nodes[0].interface_id = id;
        config.nodes[0].script.truncate(2);
        config
    };
    let (det, thr) = run_both(|| make(1));
    let other_seed =
        vnic_sim::world::seeds::run_world(make(2), vnic_sim::world::seeds::Mode::Deterministic)
            .unwrap_or_else(|f| panic!("{f}"));
    let mac = mac_from_interface_id(id);
    for o in [&det, &thr, &other_seed] {
        assert_eq!(
            o.world.drivers[0].nic.mac(),
            mac,
            "vmnet's MAC for this interface id"
        );
        assert_eq!(o.world.net.gateway.leases().first().map(|l| l.0), Some(mac));
    }
    // A different id, a different MAC.
    assert_ne!(mac_from_interface_id(node_interface_id(99, 1)), mac);
}
