//! The driver → framework report calls of `IOUserNetworkEthernet`, and the state they leave.

use crate::error::IoReturn;
use crate::link::{LinkQuality, LinkStatus, MediaType};

use super::MEDIA_LIST_MAX;

/// What the framework does with a link status reported while the interface is not enabled.
///
/// SMSC95xx's driver says such a report is discarded, and re-reports in `setInterfaceEnable`
/// (ndk.md §6e, §8, §9.5). Only one driver says so and Apple does not: the rule is
/// UNCONFIRMED, hence configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkStatusBeforeEnable {
    /// Validate the report, then drop it (the default, per SMSC95xx; UNCONFIRMED).
    #[default]
    Discard,
    /// Record it like any other report.
    Record,
}

/// What happened to a valid link-status report. Neither is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkReport {
    /// The status and media are now the current ones.
    Recorded,
    /// The interface was not enabled and [`LinkStatusBeforeEnable::Discard`] is in force.
    Discarded,
}

/// **Models:** the arguments of `ReportDataBandwidths(maxIn, maxOut, effIn, effOut)`, in bits
/// per second. "In" is what the NIC receives, "out" what it sends. An effective rate of 0
/// means "same as the maximum".
///
/// **Supported:** all four rates. **Rejected:** a non-zero effective rate above its maximum
/// (see [`ReportBandwidthsError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataBandwidths {
    /// `maxIn`: the most the NIC can receive, bits per second.
    pub input_bps_max: u64,
    /// `maxOut`: the most the NIC can send, bits per second.
    pub output_bps_max: u64,
    /// `effIn`: the receive rate actually achievable, bits per second (0 = `input_bps_max`).
    pub input_bps_effective: u64,
    /// `effOut`: the send rate actually achievable, bits per second (0 = `output_bps_max`).
    pub output_bps_effective: u64,
}

impl DataBandwidths {
    /// The same maximum and effective rate both ways, as a symmetric wired link reports.
    pub const fn symmetric(bps: u64) -> Self {
        Self {
            input_bps_max: bps,
            output_bps_max: bps,
            input_bps_effective: bps,
            output_bps_effective: bps,
        }
    }

    /// The effective receive rate, with 0 resolved to the maximum.
    pub const fn input_bps_resolved(&self) -> u64 {
        if self.input_bps_effective == 0 {
            self.input_bps_max
        } else {
            self.input_bps_effective
        }
    }

    /// The effective send rate, with 0 resolved to the maximum.
    pub const fn output_bps_resolved(&self) -> u64 {
        if self.output_bps_effective == 0 {
            self.output_bps_max
        } else {
            self.output_bps_effective
        }
    }
}

/// Why `ReportAvailableMediaTypes` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReportMediaError {
    /// An empty list: link status could then never be reported.
    #[error("empty media list")]
    Empty,
    /// More than [`MEDIA_LIST_MAX`] entries.
    #[error("{count} media types; at most {MEDIA_LIST_MAX} are kept")]
    TooMany {
        /// Entries given.
        count: usize,
    },
}

impl From<ReportMediaError> for IoReturn {
    fn from(e: ReportMediaError) -> Self {
        match e {
            // UNCONFIRMED: Apple documents no code for an empty list.
            ReportMediaError::Empty => IoReturn::BadArgument,
            // UNCONFIRMED: our bound, Apple's code for a list that is too long is unknown.
            ReportMediaError::TooMany { .. } => IoReturn::NoSpace,
        }
    }
}

/// Why `ReportLinkStatus` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReportLinkStatusError {
    /// The base status is 0x2, "active but not valid", which Apple does not define.
    #[error("link status {status:#x} has the active bit without the valid bit")]
    MalformedStatus {
        /// The raw status.
        status: u32,
    },
    /// The media word was not in the last `ReportAvailableMediaTypes` list (or no list was
    /// reported yet). ndk.md §2.1: "The active media type must be one the driver reported
    /// earlier."
    #[error("media {media} was not reported as available")]
    MediaNotAvailable {
        /// The media word given.
        media: MediaType,
    },
}

impl From<ReportLinkStatusError> for IoReturn {
    fn from(_: ReportLinkStatusError) -> Self {
        // UNCONFIRMED: the rule is documented, the code for breaking it is not.
        IoReturn::BadArgument
    }
}

/// Why `ReportLinkQuality` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReportLinkQualityError {
    /// Not `Off`, `Unknown`, or on the 0..=100 scale.
    #[error("link quality {quality} is not -2, -1 or 0..=100")]
    OutOfRange {
        /// The value given.
        quality: i32,
    },
}

impl From<ReportLinkQualityError> for IoReturn {
    fn from(_: ReportLinkQualityError) -> Self {
        // UNCONFIRMED: Apple may accept any value.
        IoReturn::BadArgument
    }
}

/// Why `ReportDataBandwidths` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReportBandwidthsError {
    /// A non-zero effective rate above its maximum.
    #[error("effective rate {effective_bps} b/s is above the maximum {max_bps} b/s")]
    EffectiveAboveMax {
        /// The effective rate given.
        effective_bps: u64,
        /// The maximum given.
        max_bps: u64,
    },
}

impl From<ReportBandwidthsError> for IoReturn {
    fn from(_: ReportBandwidthsError) -> Self {
        // UNCONFIRMED: Apple may clamp instead of refusing.
        IoReturn::BadArgument
    }
}

/// **Models:** the reporting methods `IOUserNetworkEthernet` gives its subclass:
/// `ReportAvailableMediaTypes`, `ReportLinkStatus` / `reportLinkStatus`, `ReportLinkQuality` /
/// `reportLinkQuality`, `ReportDataBandwidths` / `reportDataBandwidths`.
///
/// The link half of `IOUserNetworkEthernet`: the report calls a driver makes, and the state the
/// framework keeps from them.
///
/// **Supported:**
/// - the available-media list (bounded by [`MEDIA_LIST_MAX`]; each new report replaces it;
///   Apple recommends including `…EthernetAuto`, which the model accepts but does not
///   require);
/// - link status plus active media, which must be in the available list;
/// - the "status before enable is discarded" rule, configurable
///   ([`LinkStatusBeforeEnable`], UNCONFIRMED);
/// - link quality and data bandwidths, recorded for queries.
///
/// **Rejected:**
/// - an empty media list (`kIOReturnBadArgument`, UNCONFIRMED) or one longer than
///   [`MEDIA_LIST_MAX`] (`kIOReturnNoSpace`, UNCONFIRMED);
/// - a link status whose media was not reported, or whose base status is 0x2
///   (`kIOReturnBadArgument`, UNCONFIRMED);
/// - a quality outside −2, −1, 0..=100, and an effective bandwidth above its maximum
///   (`kIOReturnBadArgument`, UNCONFIRMED);
/// - `ReportNicProxyLimits`: not modelled (no method).
#[derive(Debug, Clone)]
pub struct LinkReporter {
    rule: LinkStatusBeforeEnable,
    interface_enabled: bool,
    available_media: heapless::Vec<MediaType, MEDIA_LIST_MAX>,
    status: LinkStatus,
    active_media: Option<MediaType>,
    quality: LinkQuality,
    bandwidths: Option<DataBandwidths>,
    link_reports_recorded: u64,
    link_reports_discarded: u64,
}

impl LinkReporter {
    /// A reporter with no media, status `Invalid`, quality `Unknown`, interface disabled.
    pub(crate) fn new(rule: LinkStatusBeforeEnable) -> Self {
        Self {
            rule,
            interface_enabled: false,
            available_media: heapless::Vec::new(),
            status: LinkStatus::INVALID,
            active_media: None,
            quality: LinkQuality::UNKNOWN,
            bandwidths: None,
            link_reports_recorded: 0,
            link_reports_discarded: 0,
        }
    }

    /// Told by the service when the interface is enabled or disabled.
    pub(crate) fn set_interface_enabled(&mut self, enabled: bool) {
        self.interface_enabled = enabled;
    }

    /// `ReportAvailableMediaTypes(mediaTypes, count)`: replaces the available-media list.
    ///
    /// # Errors
    /// [`ReportMediaError::Empty`], [`ReportMediaError::TooMany`]; the old list is kept.
    pub fn report_available_media_types(
        &mut self,
        media: &[MediaType],
    ) -> Result<(), ReportMediaError> {
        if media.is_empty() {
            return Err(ReportMediaError::Empty);
        }
        let list = heapless::Vec::from_slice(media)
            .map_err(|_| ReportMediaError::TooMany { count: media.len() })?;
        self.available_media = list;
        Ok(())
    }

    /// `ReportLinkStatus(status, activeMediaType)`.
    ///
    /// The report is validated first; then, if the interface is not enabled and the rule is
    /// [`LinkStatusBeforeEnable::Discard`], it is dropped ([`LinkReport::Discarded`]).
    ///
    /// # Errors
    /// [`ReportLinkStatusError::MalformedStatus`], [`ReportLinkStatusError::MediaNotAvailable`].
    pub fn report_link_status(
        &mut self,
        status: LinkStatus,
        active_media: MediaType,
    ) -> Result<LinkReport, ReportLinkStatusError> {
        if !status.is_well_formed() {
            return Err(ReportLinkStatusError::MalformedStatus {
                status: status.raw(),
            });
        }
        if !self.available_media.contains(&active_media) {
            return Err(ReportLinkStatusError::MediaNotAvailable {
                media: active_media,
            });
        }
        if !self.interface_enabled && self.rule == LinkStatusBeforeEnable::Discard {
            self.link_reports_discarded += 1;
            return Ok(LinkReport::Discarded);
        }
        self.status = status;
        self.active_media = Some(active_media);
        self.link_reports_recorded += 1;
        Ok(LinkReport::Recorded)
    }

    /// `ReportLinkQuality(quality)`.
    ///
    /// # Errors
    /// [`ReportLinkQualityError::OutOfRange`].
    pub fn report_link_quality(
        &mut self,
        quality: LinkQuality,
    ) -> Result<(), ReportLinkQualityError> {
        if !quality.is_in_range() {
            return Err(ReportLinkQualityError::OutOfRange {
                quality: quality.raw(),
            });
        }
        self.quality = quality;
        Ok(())
    }

    /// `ReportDataBandwidths(maxIn, maxOut, effIn, effOut)`.
    ///
    /// # Errors
    /// [`ReportBandwidthsError::EffectiveAboveMax`].
    pub fn report_data_bandwidths(
        &mut self,
        bandwidths: DataBandwidths,
    ) -> Result<(), ReportBandwidthsError> {
        for (effective_bps, max_bps) in [
            (bandwidths.input_bps_effective, bandwidths.input_bps_max),
            (bandwidths.output_bps_effective, bandwidths.output_bps_max),
        ] {
            if effective_bps > max_bps {
                return Err(ReportBandwidthsError::EffectiveAboveMax {
                    effective_bps,
                    max_bps,
                });
            }
        }
        self.bandwidths = Some(bandwidths);
        Ok(())
    }

    /// The rule for reports made before enable.
    pub fn rule(&self) -> LinkStatusBeforeEnable {
        self.rule
    }

    /// Whether the interface is enabled, as the framework sees it.
    pub fn is_interface_enabled(&self) -> bool {
        self.interface_enabled
    }

    /// The last available-media list.
    pub fn available_media(&self) -> &[MediaType] {
        &self.available_media
    }

    /// Whether `media` is in the available list.
    pub fn is_media_available(&self, media: MediaType) -> bool {
        self.available_media.contains(&media)
    }

    /// The current link status (`Invalid` until a report is recorded).
    pub fn link_status(&self) -> LinkStatus {
        self.status
    }

    /// The media of the last recorded link status.
    pub fn active_media(&self) -> Option<MediaType> {
        self.active_media
    }

    /// The last link quality (`Unknown` until reported).
    pub fn link_quality(&self) -> LinkQuality {
        self.quality
    }

    /// The last data bandwidths.
    pub fn data_bandwidths(&self) -> Option<DataBandwidths> {
        self.bandwidths
    }

    /// Link-status reports recorded.
    pub fn link_reports_recorded(&self) -> u64 {
        self.link_reports_recorded
    }

    /// Valid link-status reports dropped by the before-enable rule.
    pub fn link_reports_discarded(&self) -> u64 {
        self.link_reports_discarded
    }
}
