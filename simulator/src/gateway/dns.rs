//! The DNS proxy's answers (vmnet.md §7(a): shared mode runs a DNS proxy at the gateway).
//!
//! The proxy here is authoritative for the simulated outside names only: an `A` query for one
//! of them is answered, other types for a known name get an empty NOERROR answer, anything else
//! is NXDOMAIN. Parsing and building use the `simple-dns` crate.

use std::net::Ipv4Addr;

use simple_dns::rdata::{RData, A};
use simple_dns::{Packet, PacketFlag, ResourceRecord, CLASS, OPCODE, QTYPE, RCODE, TYPE};

/// TTL of every answer, seconds.
pub const DNS_TTL_S: u32 = 60;

/// The outcome of one query.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DnsOutcome {
    /// An answer with at least one record.
    Answer(Vec<u8>),
    /// NXDOMAIN (or an empty NOERROR for a known name's other types).
    NoAnswer(Vec<u8>),
    /// Not a query we can parse or answer: drop.
    Malformed,
}

/// Answers `query` from `names` (lower-case, no trailing dot).
pub(crate) fn answer(query: &[u8], names: &[(&str, Ipv4Addr)]) -> DnsOutcome {
    let Ok(q) = Packet::parse(query) else {
        return DnsOutcome::Malformed;
    };
    if q.has_flags(PacketFlag::RESPONSE) || q.opcode() != OPCODE::StandardQuery {
        return DnsOutcome::Malformed;
    }
    let [question] = q.questions.as_slice() else {
        return DnsOutcome::Malformed;
    };
    let name = question.qname.to_string();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let found = names.iter().find(|(n, _)| *n == name).map(|&(_, a)| a);
    let mut reply = Packet::new_reply(q.id());
    reply.set_flags(PacketFlag::RECURSION_AVAILABLE);
    if q.has_flags(PacketFlag::RECURSION_DESIRED) {
        reply.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    reply.questions.push(question.clone());
    let mut answered = false;
    match found {
        Some(addr) => {
            if question.qtype == QTYPE::TYPE(TYPE::A) || question.qtype == QTYPE::ANY {
                reply.answers.push(ResourceRecord::new(
                    question.qname.clone(),
                    CLASS::IN,
                    DNS_TTL_S,
                    RData::A(A::from(addr)),
                ));
                answered = true;
            }
        }
        None => *reply.rcode_mut() = RCODE::NameError,
    }
    match reply.build_bytes_vec_compressed() {
        Ok(bytes) if answered => DnsOutcome::Answer(bytes),
        Ok(bytes) => DnsOutcome::NoAnswer(bytes),
        Err(_) => DnsOutcome::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::{Name, Question};

    fn query(name: &str, t: TYPE) -> Vec<u8> {
        let mut p = Packet::new_query(0x1234);
        p.questions.push(Question::new(
            Name::new_unchecked(name),
            t.into(),
            CLASS::IN.into(),
            false,
        ));
        p.build_bytes_vec().unwrap()
    }

    const NAMES: &[(&str, Ipv4Addr)] = &[("echo.vnic.test", Ipv4Addr::new(198, 51, 100, 7))];

    #[test]
    fn a_query_for_a_known_name_is_answered() {
        let DnsOutcome::Answer(bytes) = answer(&query("Echo.Vnic.Test", TYPE::A), NAMES) else {
            panic!("no answer");
        };
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!(p.id(), 0x1234);
        assert!(p.has_flags(PacketFlag::RESPONSE));
        assert_eq!(p.answers.len(), 1);
        assert_eq!(
            p.answers[0].rdata,
            RData::A(A::from(Ipv4Addr::new(198, 51, 100, 7)))
        );
    }

    #[test]
    fn unknown_names_are_nxdomain_and_garbage_is_malformed() {
        let DnsOutcome::NoAnswer(bytes) = answer(&query("nope.example", TYPE::A), NAMES) else {
            panic!("expected NXDOMAIN");
        };
        assert_eq!(Packet::parse(&bytes).unwrap().rcode(), RCODE::NameError);
        let DnsOutcome::NoAnswer(bytes) = answer(&query("echo.vnic.test", TYPE::AAAA), NAMES)
        else {
            panic!("expected empty NOERROR");
        };
        assert_eq!(Packet::parse(&bytes).unwrap().rcode(), RCODE::NoError);
        assert_eq!(answer(&[1, 2, 3], NAMES), DnsOutcome::Malformed);
    }
}
