//! FLOOR-REQUEST-INFORMATION, the grouped attribute FloorRequestStatus and FloorStatus carry
//! (RFC 8855 §5.2.15): read into what the roles act on, and written for one floor.

use crate::attribute::{Attribute, RequestStatus};
use crate::message::Message;

/// What one FLOOR-REQUEST-INFORMATION says about a floor request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FloorRequestInfo {
    pub(crate) floor_request_id: u16,
    /// From OVERALL-REQUEST-STATUS, or else the first FLOOR-REQUEST-STATUS that has one.
    pub(crate) status: Option<RequestStatus>,
    pub(crate) queue_position: u8,
    pub(crate) status_info: Option<String>,
    /// The floors of the FLOOR-REQUEST-STATUS attributes.
    pub(crate) floor_ids: Vec<u16>,
    /// Whose request it is: the beneficiary, or else whoever made it.
    pub(crate) user_id: Option<u16>,
}

impl FloorRequestInfo {
    pub(crate) fn read(attribute: &Attribute) -> Option<FloorRequestInfo> {
        let Attribute::FloorRequestInformation {
            floor_request_id,
            attributes,
        } = attribute
        else {
            return None;
        };
        let status_info = |inner: &[Attribute]| {
            inner.iter().find_map(|a| match a {
                Attribute::StatusInfo(text) => Some(text.clone()),
                _ => None,
            })
        };
        let overall = attributes.iter().find_map(|a| match a {
            Attribute::OverallRequestStatus { attributes, .. } => Some(attributes.as_slice()),
            _ => None,
        });
        let per_floor: Vec<(u16, &[Attribute])> = attributes
            .iter()
            .filter_map(|a| match a {
                Attribute::FloorRequestStatus {
                    floor_id,
                    attributes,
                } => Some((*floor_id, attributes.as_slice())),
                _ => None,
            })
            .collect();
        let with_status = overall
            .filter(|inner| Message::request_status_in(inner).is_some())
            .or_else(|| {
                per_floor
                    .iter()
                    .map(|(_, inner)| *inner)
                    .find(|inner| Message::request_status_in(inner).is_some())
            });
        let (status, queue_position) = with_status
            .and_then(Message::request_status_in)
            .map_or((None, 0), |(s, q)| (Some(s), q));
        let status_info = with_status
            .and_then(status_info)
            .or_else(|| overall.and_then(status_info));
        let user_id = attributes
            .iter()
            .find_map(|a| match a {
                Attribute::BeneficiaryInformation { beneficiary_id, .. } => Some(*beneficiary_id),
                _ => None,
            })
            .or_else(|| {
                attributes.iter().find_map(|a| match a {
                    Attribute::RequestedByInformation {
                        requested_by_id, ..
                    } => Some(*requested_by_id),
                    _ => None,
                })
            });
        Some(FloorRequestInfo {
            floor_request_id: *floor_request_id,
            status,
            queue_position,
            status_info,
            floor_ids: per_floor.iter().map(|(id, _)| *id).collect(),
            user_id,
        })
    }

    /// Every FLOOR-REQUEST-INFORMATION at the top of `message`.
    pub(crate) fn all_in(message: &Message) -> Vec<FloorRequestInfo> {
        message
            .attributes
            .iter()
            .filter_map(FloorRequestInfo::read)
            .collect()
    }
}

/// FLOOR-REQUEST-INFORMATION for a request about one floor: its status both overall and for
/// the floor (readers look in either), and whose request it is.
pub(crate) fn floor_request_information(
    floor_request_id: u16,
    floor_id: u16,
    status: RequestStatus,
    user_id: u16,
) -> Attribute {
    let request_status = Attribute::RequestStatus {
        status,
        queue_position: 0,
    };
    Attribute::FloorRequestInformation {
        floor_request_id,
        attributes: vec![
            Attribute::OverallRequestStatus {
                floor_request_id,
                attributes: vec![request_status.clone()],
            },
            Attribute::FloorRequestStatus {
                floor_id,
                attributes: vec![request_status],
            },
            Attribute::BeneficiaryInformation {
                beneficiary_id: user_id,
                attributes: vec![],
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_we_write_reads_back() {
        let attribute = floor_request_information(7, 2, RequestStatus::Revoked, 9);
        assert_eq!(
            FloorRequestInfo::read(&attribute),
            Some(FloorRequestInfo {
                floor_request_id: 7,
                status: Some(RequestStatus::Revoked),
                queue_position: 0,
                status_info: None,
                floor_ids: vec![2],
                user_id: Some(9),
            })
        );
    }

    #[test]
    fn status_may_come_per_floor_and_the_holder_from_requested_by() {
        let attribute = Attribute::FloorRequestInformation {
            floor_request_id: 3,
            attributes: vec![
                Attribute::FloorRequestStatus {
                    floor_id: 1,
                    attributes: vec![
                        Attribute::RequestStatus {
                            status: RequestStatus::Pending,
                            queue_position: 2,
                        },
                        Attribute::StatusInfo("queued".to_owned()),
                    ],
                },
                Attribute::RequestedByInformation {
                    requested_by_id: 5,
                    attributes: vec![],
                },
            ],
        };
        let info = FloorRequestInfo::read(&attribute).expect("is one");
        assert_eq!(info.status, Some(RequestStatus::Pending));
        assert_eq!(info.queue_position, 2);
        assert_eq!(info.status_info.as_deref(), Some("queued"));
        assert_eq!(info.user_id, Some(5));
    }
}
