//! Link, media, feature and hardware-assist values of `IOUserNetworkEthernet` (ndk.md §1.2–1.6).
//!
//! Every number here is one ndk.md confirms from Apple's `IOUserNetworkTypes.h` (source S3).
//! Names whose value is UNCONFIRMED get no number: `kIOUserNetworkLinkStatusForceNotify`,
//! `kIOUserNetworkFeatureHWTimeStamp` / `SWTimeStamp`, and every `kIOUserNetworkHWAssist*` bit.
//! Such values still pass through the model unchanged ([`LinkStatus::from_raw`],
//! [`FeatureFlags::from_bits_retain`], [`HardwareAssists::from_bits_retain`]); they just have
//! no name on the Rust side.
//!
//! | Apple | ours |
//! | --- | --- |
//! | `IOUserNetworkLinkStatus` / `LinkStatus` | [`LinkStatus`] |
//! | `IOUserNetworkLinkQuality` / `LinkQuality` | [`LinkQuality`] |
//! | `IOUserNetworkMediaType` / `MediaWord` | [`MediaType`] (+ [`MediaOptions`]) |
//! | `kIOUserNetworkFeatureFlag*` | [`FeatureFlags`] |
//! | `kIOUserNetworkHWAssist*` | [`HardwareAssists`] (opaque) |

use std::fmt;
use std::ops::BitOr;

/// **Models:** `IOUserNetworkLinkStatus` / `LinkStatus`: a base status in bits 0–1 plus OR-able
/// flag bits.
///
/// Bit 0 means "valid" and bit 1 "active", so the three base statuses are
/// [`LinkStatus::INVALID`] (0), [`LinkStatus::INACTIVE`] (1) and [`LinkStatus::ACTIVE`] (3);
/// [`LinkStatus::WAKE_SAME_NET`] (4) is a flag OR-ed on top.
///
/// **Supported:** the four confirmed values, OR-ing flags, splitting base and flags, and any
/// raw word (unknown bits are carried unchanged).
///
/// **Rejected:** `kIOUserNetworkLinkStatusForceNotify` has no constant: it is a flag (SwifterKit
/// masks it off with `WakeSameNet`) but its value is UNCONFIRMED; build it with
/// [`LinkStatus::from_raw`] once someone reads it from a real SDK header. The malformed base
/// 0x2 is representable; [`crate::ethernet::LinkReporter::report_link_status`] refuses it.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LinkStatus(u32);

impl LinkStatus {
    /// `kIOUserNetworkLinkStatusInvalid` (0x0): no valid link information.
    pub const INVALID: Self = Self(0x0);
    /// `kIOUserNetworkLinkStatusInactive` (0x1): valid, link down.
    pub const INACTIVE: Self = Self(0x1);
    /// `kIOUserNetworkLinkStatusActive` (0x3): valid and up.
    pub const ACTIVE: Self = Self(0x3);
    /// `kIOUserNetworkLinkStatusWakeSameNet` (0x4): flag, woke on the same network.
    pub const WAKE_SAME_NET: Self = Self(0x4);
    /// Mask of the base status (bit 0 valid, bit 1 active).
    pub const BASE_MASK: u32 = 0x3;

    /// The raw `uint32_t`, unknown bits included.
    pub const fn from_raw(raw: u32) -> Self {
        Self(raw)
    }

    /// The raw `uint32_t`.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The base status alone: [`LinkStatus::INVALID`], [`LinkStatus::INACTIVE`],
    /// [`LinkStatus::ACTIVE`], or the malformed "active but not valid" (0x2).
    #[must_use]
    pub const fn base(self) -> Self {
        Self(self.0 & Self::BASE_MASK)
    }

    /// The flag bits above the base status (`WakeSameNet`, `ForceNotify`, unknown bits).
    pub const fn flag_bits(self) -> u32 {
        self.0 & !Self::BASE_MASK
    }

    /// Whether the base status is one of the three Apple defines (not 0x2, "active but not
    /// valid").
    pub const fn is_well_formed(self) -> bool {
        self.0 & Self::BASE_MASK != 0x2
    }

    /// Whether the base status is [`LinkStatus::ACTIVE`].
    pub const fn is_active(self) -> bool {
        self.0 & Self::BASE_MASK == Self::ACTIVE.0
    }

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for LinkStatus {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// **Models:** `IOUserNetworkLinkQuality` / `LinkQuality`: a `uint32_t` alias carrying a signed
/// value.
///
/// **Supported:** the specials [`LinkQuality::OFF`] (−2) and [`LinkQuality::UNKNOWN`] (−1), the
/// named points of the 0–100 scale ([`LinkQuality::BAD`], [`LinkQuality::POOR`],
/// [`LinkQuality::GOOD`]), and the two's-complement `uint32_t` the C ABI carries.
///
/// **Rejected:** values outside −2, −1 and 0..=100 are representable but
/// [`LinkQuality::is_in_range`] is false, and the report call refuses them (that Apple does is
/// UNCONFIRMED).
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkQuality(i32);

impl LinkQuality {
    /// `kIOUserNetworkLinkQualityOff` (−2).
    pub const OFF: Self = Self(-2);
    /// `kIOUserNetworkLinkQualityUnknown` (−1).
    pub const UNKNOWN: Self = Self(-1);
    /// `kIOUserNetworkLinkQualityBad` (10).
    pub const BAD: Self = Self(10);
    /// `kIOUserNetworkLinkQualityPoor` (50).
    pub const POOR: Self = Self(50);
    /// `kIOUserNetworkLinkQualityGood` (100).
    pub const GOOD: Self = Self(100);
    /// Top of the quality scale.
    pub const SCALE_MAX: i32 = 100;

    /// A quality from its signed value.
    pub const fn from_raw(raw: i32) -> Self {
        Self(raw)
    }

    /// The signed value.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The `uint32_t` the C ABI carries (two's complement: −1 is `0xffff_ffff`).
    pub const fn to_wire(self) -> u32 {
        u32::from_ne_bytes(self.0.to_ne_bytes())
    }

    /// Decodes the `uint32_t` the C ABI carries.
    pub const fn from_wire(wire: u32) -> Self {
        Self(i32::from_ne_bytes(wire.to_ne_bytes()))
    }

    /// Whether the value is a special (`Off`, `Unknown`) or on the 0..=100 scale.
    pub const fn is_in_range(self) -> bool {
        self.0 == Self::OFF.0 || self.0 == Self::UNKNOWN.0 || (self.0 >= 0 && self.0 <= 100)
    }
}

impl Default for LinkQuality {
    /// [`LinkQuality::UNKNOWN`].
    fn default() -> Self {
        Self::UNKNOWN
    }
}

bitflags::bitflags! {
    /// **Models:** `kIOUserNetworkMediaOption*`, options OR-ed into a [`MediaType`] (ndk.md
    /// §1.4).
    ///
    /// **Supported:** the five confirmed options. **Rejected:** none; unknown bits of a media
    /// word are kept in the [`MediaType`], not here.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct MediaOptions: u32 {
        /// `kIOUserNetworkMediaOptionFullDuplex` (0x0010_0000).
        const FULL_DUPLEX = 0x0010_0000;
        /// `kIOUserNetworkMediaOptionHalfDuplex` (0x0020_0000).
        const HALF_DUPLEX = 0x0020_0000;
        /// `kIOUserNetworkMediaOptionFlowControl` (0x0040_0000).
        const FLOW_CONTROL = 0x0040_0000;
        /// `kIOUserNetworkMediaOptionEEE` (0x0080_0000): energy-efficient Ethernet.
        const EEE = 0x0080_0000;
        /// `kIOUserNetworkMediaOptionLoopback` (0x0800_0000).
        const LOOPBACK = 0x0800_0000;
    }
}

/// **Models:** `IOUserNetworkMediaType` / `MediaWord`: an Ethernet subtype (low 12 bits,
/// [`MediaType::SUBTYPE_MASK`]) plus [`MediaOptions`].
///
/// Build one with a constant and `|` an option: `MediaType::ETHERNET_1000BASE_T |
/// MediaOptions::FULL_DUPLEX`.
///
/// **Supported:** every `kIOUserNetworkMediaEthernet*` subtype of ndk.md §1.5 (48), options,
/// and raw words: words with unknown bits pass through [`MediaType::from_raw`] unchanged.
///
/// **Rejected:** media families other than Ethernet have no constants (NDK only defines
/// Ethernet).
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MediaType(u32);

macro_rules! ethernet_media {
    ($($name:ident = $value:literal, $apple:literal;)*) => {
        impl MediaType {
            $(
                #[doc = concat!("`kIOUserNetworkMediaEthernet", $apple, "` (", stringify!($value), ").")]
                pub const $name: Self = Self($value);
            )*
        }

        /// Every Ethernet subtype of ndk.md §1.5, with Apple's name suffix.
        const ETHERNET_SUBTYPES: &[(u32, &str)] = &[$(($value, $apple)),*];
    };
}

ethernet_media! {
    ETHERNET_AUTO = 0x20, "Auto";
    ETHERNET_MANUAL = 0x21, "Manual";
    ETHERNET_NONE = 0x22, "None";
    ETHERNET_10BASE_T = 0x23, "10BaseT";
    ETHERNET_10BASE_2 = 0x24, "10Base2";
    ETHERNET_10BASE_5 = 0x25, "10Base5";
    ETHERNET_100BASE_TX = 0x26, "100BaseTX";
    ETHERNET_100BASE_FX = 0x27, "100BaseFX";
    ETHERNET_100BASE_T4 = 0x28, "100BaseT4";
    ETHERNET_100BASE_VG = 0x29, "100BaseVG";
    ETHERNET_100BASE_T2 = 0x2a, "100BaseT2";
    ETHERNET_1000BASE_SX = 0x2b, "1000BaseSX";
    ETHERNET_10BASE_STP = 0x2c, "10BaseSTP";
    ETHERNET_10BASE_FL = 0x2d, "10BaseFL";
    ETHERNET_1000BASE_LX = 0x2e, "1000BaseLX";
    ETHERNET_1000BASE_CX = 0x2f, "1000BaseCX";
    ETHERNET_1000BASE_T = 0x30, "1000BaseT";
    ETHERNET_HOME_PNA1 = 0x31, "HomePNA1";
    ETHERNET_10GBASE_SR = 0x32, "10GBaseSR";
    ETHERNET_10GBASE_LR = 0x33, "10GBaseLR";
    ETHERNET_10GBASE_CX4 = 0x34, "10GBaseCX4";
    ETHERNET_10GBASE_T = 0x35, "10GBaseT";
    ETHERNET_2500BASE_T = 0x36, "2500BaseT";
    ETHERNET_5000BASE_T = 0x37, "5000BaseT";
    ETHERNET_1000BASE_CX_SGMII = 0x38, "1000BaseCX_SGMII";
    ETHERNET_1000BASE_KX = 0x39, "1000BaseKX";
    ETHERNET_10GBASE_KX4 = 0x3a, "10GBaseKX4";
    ETHERNET_10GBASE_KR = 0x3b, "10GBaseKR";
    ETHERNET_10GBASE_CR1 = 0x3c, "10GBaseCR1";
    ETHERNET_10GBASE_ER = 0x3d, "10GBaseER";
    ETHERNET_20GBASE_KR2 = 0x3e, "20GBaseKR2";
    ETHERNET_25GBASE_CR = 0x3f, "25GBaseCR";
    ETHERNET_25GBASE_KR = 0x820, "25GBaseKR";
    ETHERNET_25GBASE_SR = 0x821, "25GBaseSR";
    ETHERNET_25GBASE_LR = 0x822, "25GBaseLR";
    ETHERNET_40GBASE_CR4 = 0x823, "40GBaseCR4";
    ETHERNET_40GBASE_SR4 = 0x824, "40GBaseSR4";
    ETHERNET_40GBASE_LR4 = 0x825, "40GBaseLR4";
    ETHERNET_40GBASE_KR4 = 0x826, "40GBaseKR4";
    ETHERNET_50GBASE_CR2 = 0x827, "50GBaseCR2";
    ETHERNET_50GBASE_KR2 = 0x828, "50GBaseKR2";
    ETHERNET_50GBASE_SR2 = 0x829, "50GBaseSR2";
    ETHERNET_50GBASE_LR2 = 0x82a, "50GBaseLR2";
    ETHERNET_56GBASE_R4 = 0x82b, "56GBaseR4";
    ETHERNET_100GBASE_CR4 = 0x82c, "100GBaseCR4";
    ETHERNET_100GBASE_SR4 = 0x82d, "100GBaseSR4";
    ETHERNET_100GBASE_KR4 = 0x82e, "100GBaseKR4";
    ETHERNET_100GBASE_LR4 = 0x82f, "100GBaseLR4";
}

impl MediaType {
    /// Mask of the Ethernet subtype (`0xfff`, ndk.md §1.5).
    pub const SUBTYPE_MASK: u32 = 0xfff;

    /// A media word from its raw value, unknown bits included.
    pub const fn from_raw(raw: u32) -> Self {
        Self(raw)
    }

    /// The raw media word.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The Ethernet subtype (`raw & 0xfff`).
    pub const fn subtype(self) -> u32 {
        self.0 & Self::SUBTYPE_MASK
    }

    /// The known media options set in this word.
    pub const fn options(self) -> MediaOptions {
        MediaOptions::from_bits_truncate(self.0)
    }

    /// This word with `options` added.
    #[must_use]
    pub const fn with_options(self, options: MediaOptions) -> Self {
        Self(self.0 | options.bits())
    }

    /// This word with every known option removed.
    #[must_use]
    pub const fn without_options(self) -> Self {
        Self(self.0 & !MediaOptions::all().bits())
    }

    /// Whether the subtype is `…EthernetAuto`.
    pub const fn is_auto(self) -> bool {
        self.subtype() == Self::ETHERNET_AUTO.0
    }

    /// Apple's name suffix for the subtype (`"1000BaseT"`), if ndk.md §1.5 lists it.
    pub fn subtype_name(self) -> Option<&'static str> {
        ETHERNET_SUBTYPES
            .iter()
            .find(|(value, _)| *value == self.subtype())
            .map(|(_, name)| *name)
    }

    /// Every Ethernet subtype ndk.md §1.5 lists, in table order.
    pub fn ethernet_subtypes() -> impl Iterator<Item = MediaType> {
        ETHERNET_SUBTYPES.iter().map(|(value, _)| MediaType(*value))
    }
}

impl BitOr<MediaOptions> for MediaType {
    type Output = MediaType;

    fn bitor(self, rhs: MediaOptions) -> MediaType {
        self.with_options(rhs)
    }
}

impl fmt::Display for MediaType {
    /// `1000BaseT <FULL_DUPLEX>`, or the hex word when the subtype is not in the table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.subtype_name() {
            Some(name) => f.write_str(name)?,
            None => write!(f, "{:#x}", self.subtype())?,
        }
        let options = self.options();
        if !options.is_empty() {
            f.write_str(" <")?;
            bitflags::parser::to_writer(&options, &mut *f)?;
            f.write_str(">")?;
        }
        Ok(())
    }
}

bitflags::bitflags! {
    /// **Models:** `kIOUserNetworkFeatureFlag*`, the word `getFeatureFlags()` returns (ndk.md
    /// §1.6).
    ///
    /// **Supported:** the three confirmed bits, by name.
    ///
    /// **Rejected:** `kIOUserNetworkFeatureHWTimeStamp` and `SWTimeStamp` get no name: their
    /// values are UNCONFIRMED. Carry them with [`FeatureFlags::from_bits_retain`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct FeatureFlags: u32 {
        /// `kIOUserNetworkFeatureFlagSoftwareVlan` (0x0002_0000).
        const SOFTWARE_VLAN = 0x0002_0000;
        /// `kIOUserNetworkFeatureFlagWOMP` (0x0400_0000): wake on magic packet.
        const WOMP = 0x0400_0000;
        /// `kIOUserNetworkFeatureFlagNicProxy` (0x0800_0000).
        const NIC_PROXY = 0x0800_0000;
    }
}

bitflags::bitflags! {
    /// **Models:** the `kIOUserNetworkHWAssist*` bits of `get/setHardwareAssists` (ndk.md
    /// §1.6).
    ///
    /// **Supported:** any `u32`, and set operations on it. **Rejected:** bit names.
    ///
    /// **Opaque.** Apple names the bits (`TxChecksumIPHdr`, `TxChecksumTCP`, `TxChecksumUDP`,
    /// `RxChecksum`, `TSO4`, `TSO6`, `LRO`, `LRONumSeg`, `SoftwareVlan`, `WOMP`, `NicProxy`,
    /// `HWTimeStamp`, `SWTimeStamp`) but their numeric values are UNCONFIRMED, so this type
    /// gives no bit a name. It carries whatever `u32` the driver and the stack agree on, and
    /// supports the set operations (`|`, `&`, `!`, [`HardwareAssists::contains`]) the
    /// framework needs to apply a `setHardwareAssists(assists, mask)` call.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct HardwareAssists: u32 {
        // Every bit may be set by Apple; none is named here.
        const _ = !0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_status_values_are_ndk_md_1_2() {
        assert_eq!(LinkStatus::INVALID.raw(), 0x0);
        assert_eq!(LinkStatus::INACTIVE.raw(), 0x1);
        assert_eq!(LinkStatus::ACTIVE.raw(), 0x3);
        assert_eq!(LinkStatus::WAKE_SAME_NET.raw(), 0x4);
        assert_eq!(LinkStatus::default(), LinkStatus::INVALID);
    }

    #[test]
    fn link_status_splits_base_and_flags() {
        let woke = LinkStatus::ACTIVE | LinkStatus::WAKE_SAME_NET;
        assert!(woke.is_active());
        assert!(woke.is_well_formed());
        assert!(woke.contains(LinkStatus::WAKE_SAME_NET));
        assert_eq!(woke.base(), LinkStatus::ACTIVE);
        assert_eq!(woke.flag_bits(), LinkStatus::WAKE_SAME_NET.raw());
        assert!(!LinkStatus::INACTIVE.is_active());
        assert!(LinkStatus::INACTIVE.is_well_formed());
        // Bit 1 without bit 0: "active but not valid".
        assert!(!LinkStatus::from_raw(0x2).is_well_formed());
        // An unknown flag (e.g. ForceNotify, value UNCONFIRMED) survives the round trip.
        assert_eq!(LinkStatus::from_raw(0x8000_0003).raw(), 0x8000_0003);
    }

    #[test]
    fn link_quality_values_are_ndk_md_1_3_and_cross_the_wire() {
        let table = [
            (LinkQuality::OFF, -2),
            (LinkQuality::UNKNOWN, -1),
            (LinkQuality::BAD, 10),
            (LinkQuality::POOR, 50),
            (LinkQuality::GOOD, 100),
        ];
        for (quality, raw) in table {
            assert_eq!(quality.raw(), raw);
            assert!(quality.is_in_range());
            assert_eq!(LinkQuality::from_wire(quality.to_wire()), quality);
        }
        assert_eq!(LinkQuality::OFF.to_wire(), 0xffff_fffe);
        assert_eq!(LinkQuality::UNKNOWN.to_wire(), u32::MAX);
        assert!(LinkQuality::from_raw(0).is_in_range());
        assert!(!LinkQuality::from_raw(101).is_in_range());
        assert!(!LinkQuality::from_raw(-3).is_in_range());
        assert_eq!(LinkQuality::default(), LinkQuality::UNKNOWN);
    }

    #[test]
    fn media_subtypes_are_ndk_md_1_5() {
        let expected = [
            (MediaType::ETHERNET_AUTO, 0x20),
            (MediaType::ETHERNET_MANUAL, 0x21),
            (MediaType::ETHERNET_NONE, 0x22),
            (MediaType::ETHERNET_10BASE_T, 0x23),
            (MediaType::ETHERNET_100BASE_TX, 0x26),
            (MediaType::ETHERNET_1000BASE_T, 0x30),
            (MediaType::ETHERNET_10GBASE_T, 0x35),
            (MediaType::ETHERNET_2500BASE_T, 0x36),
            (MediaType::ETHERNET_5000BASE_T, 0x37),
            (MediaType::ETHERNET_25GBASE_KR, 0x820),
            (MediaType::ETHERNET_100GBASE_LR4, 0x82f),
        ];
        for (media, raw) in expected {
            assert_eq!(media.raw(), raw, "{media}");
        }
        let all: Vec<MediaType> = MediaType::ethernet_subtypes().collect();
        assert_eq!(all.len(), 48);
        for (i, media) in all.iter().enumerate() {
            assert_eq!(media.subtype(), media.raw(), "{media} fits the 0xfff mask");
            assert!(media.options().is_empty());
            assert!(
                all[i + 1..].iter().all(|other| other != media),
                "{media} is listed once"
            );
        }
    }

    #[test]
    fn media_options_are_ndk_md_1_4_and_compose() {
        assert_eq!(MediaOptions::FULL_DUPLEX.bits(), 0x0010_0000);
        assert_eq!(MediaOptions::HALF_DUPLEX.bits(), 0x0020_0000);
        assert_eq!(MediaOptions::FLOW_CONTROL.bits(), 0x0040_0000);
        assert_eq!(MediaOptions::EEE.bits(), 0x0080_0000);
        assert_eq!(MediaOptions::LOOPBACK.bits(), 0x0800_0000);
        let word = MediaType::ETHERNET_1000BASE_T | MediaOptions::FULL_DUPLEX;
        assert_eq!(word.raw(), 0x0010_0030);
        assert_eq!(word.subtype(), 0x30);
        assert_eq!(word.options(), MediaOptions::FULL_DUPLEX);
        assert_eq!(word.without_options(), MediaType::ETHERNET_1000BASE_T);
        assert!(!word.is_auto());
        assert!(MediaType::ETHERNET_AUTO.is_auto());
        assert_eq!(word.to_string(), "1000BaseT <FULL_DUPLEX>");
        assert_eq!(MediaType::from_raw(0x7ff).to_string(), "0x7ff");
        assert_eq!(
            MediaType::ETHERNET_10GBASE_T.subtype_name(),
            Some("10GBaseT")
        );
    }

    #[test]
    fn feature_flags_are_ndk_md_1_6() {
        assert_eq!(FeatureFlags::SOFTWARE_VLAN.bits(), 0x0002_0000);
        assert_eq!(FeatureFlags::WOMP.bits(), 0x0400_0000);
        assert_eq!(FeatureFlags::NIC_PROXY.bits(), 0x0800_0000);
        // An UNCONFIRMED timestamp bit is carried, not dropped.
        let with_unknown = FeatureFlags::from_bits_retain(0x0000_0001) | FeatureFlags::WOMP;
        assert_eq!(with_unknown.bits(), 0x0400_0001);
    }

    #[test]
    fn hardware_assists_are_opaque_sets() {
        let advertised = HardwareAssists::from_bits_retain(0b1011);
        let wanted = HardwareAssists::from_bits_retain(0b0011);
        assert!(advertised.contains(wanted));
        assert!(!wanted.contains(advertised));
        assert_eq!((advertised & !wanted).bits(), 0b1000);
        assert_eq!(HardwareAssists::all().bits(), u32::MAX);
    }
}
