//! The impact x urgency -> priority matrix: data, seeded with the common
//! default (ITSM.md), replaced whole by an admin. Every one of the nine
//! combinations has exactly one cell.

use itsm_platform::{ApiError, Violations};
use itsm_store::audit::{Actor, FieldChange};

use super::enums::{self, Impact, Priority, Urgency};

/// The singleton's resource name.
pub const NAME: &str = "priorityMatrix";

/// Priorities by `[impact - 1][urgency - 1]`.
pub type Cells = [[Priority; 3]; 3];

/// The default: priority = impact + urgency - 1.
pub const DEFAULT: Cells = [
    [Priority::Critical, Priority::High, Priority::Moderate],
    [Priority::High, Priority::Moderate, Priority::Low],
    [Priority::Moderate, Priority::Low, Priority::Planning],
];

/// The stored matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityMatrix {
    pub cells: Cells,
    /// The etag's version: 1 as seeded.
    pub version: i64,
    /// 0 while the seed was never changed.
    pub update_time: i64,
    pub updated_by: Actor,
}

/// The priority of `impact` x `urgency` in `cells`.
pub fn priority(cells: &Cells, impact: Impact, urgency: Urgency) -> Priority {
    cells[index(impact.number())][index(urgency.number())]
}

/// Every cell, impact-major.
pub fn cells(cells: &Cells) -> impl Iterator<Item = (Impact, Urgency, Priority)> + '_ {
    Impact::ALL.iter().flat_map(move |impact| {
        Urgency::ALL
            .iter()
            .map(move |urgency| (*impact, *urgency, priority(cells, *impact, *urgency)))
    })
}

fn index(number: i32) -> usize {
    // Impact and urgency numbers are 1..=3 by construction.
    usize::try_from(number - 1).unwrap_or(0).min(2)
}

/// A replacement sent by a caller: `(impact, urgency, priority)` numbers per
/// cell. Checks every cell and that each combination appears exactly once,
/// naming each bad one under `matrix.cells`.
pub fn validate(sent: &[(i32, i32, i32)]) -> Result<Cells, ApiError> {
    let mut v = Violations::new();
    let mut seen = [[false; 3]; 3];
    let mut cells = DEFAULT;
    for (i, (impact, urgency, priority)) in sent.iter().enumerate() {
        let field = format!("matrix.cells[{i}]");
        let impact = enums::required(
            &mut v,
            &format!("{field}.impact"),
            *impact,
            Impact::from_number,
            Impact::allowed,
        );
        let urgency = enums::required(
            &mut v,
            &format!("{field}.urgency"),
            *urgency,
            Urgency::from_number,
            Urgency::allowed,
        );
        let priority = enums::required(
            &mut v,
            &format!("{field}.priority"),
            *priority,
            Priority::from_number,
            Priority::allowed,
        );
        if let (Some(impact), Some(urgency)) = (impact, urgency) {
            let (i, u) = (index(impact.number()), index(urgency.number()));
            if seen[i][u] {
                v.add(
                    field,
                    format!("repeats the cell of impact {impact} x urgency {urgency}"),
                );
            }
            seen[i][u] = true;
            if let Some(priority) = priority {
                cells[i][u] = priority;
            }
        }
    }
    for impact in Impact::ALL {
        for urgency in Urgency::ALL {
            if !seen[index(impact.number())][index(urgency.number())] {
                v.add(
                    "matrix.cells",
                    format!(
                        "misses the cell of impact {impact} x urgency {urgency}: all nine are required"
                    ),
                );
            }
        }
    }
    v.into_result()?;
    Ok(cells)
}

/// What a replacement changes, cell by cell.
pub fn changes(old: &Cells, new: &Cells) -> Vec<FieldChange> {
    cells(old)
        .zip(cells(new))
        .filter(|((_, _, before), (_, _, after))| before != after)
        .map(|((impact, urgency, before), (_, _, after))| {
            FieldChange::new(
                &format!("cells[impact={impact},urgency={urgency}].priority"),
                before,
                after,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn all_cells(cells: &Cells) -> Vec<(i32, i32, i32)> {
        super::cells(cells)
            .map(|(i, u, p)| (i.number(), u.number(), p.number()))
            .collect()
    }

    #[test]
    fn the_default_is_the_common_matrix() {
        for (impact, urgency, priority) in super::cells(&DEFAULT) {
            assert_eq!(
                priority.number(),
                impact.number() + urgency.number() - 1,
                "{impact} x {urgency}"
            );
        }
        assert_eq!(
            priority(&DEFAULT, Impact::High, Urgency::High),
            Priority::Critical
        );
        assert_eq!(
            priority(&DEFAULT, Impact::Low, Urgency::Low),
            Priority::Planning
        );
    }

    #[test]
    fn missing_repeated_and_unknown_cells_are_named() {
        let mut sent = all_cells(&DEFAULT);
        sent[8] = sent[0]; // (LOW, LOW) missing, (HIGH, HIGH) twice
        sent[3].2 = 9;
        let error = validate(&sent).unwrap_err();
        let fields: Vec<_> = error
            .field_violations()
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "matrix.cells[3].priority",
                "matrix.cells[8]",
                "matrix.cells"
            ]
        );
        assert!(
            error.message().contains("impact LOW x urgency LOW"),
            "{}",
            error.message()
        );
        assert!(validate(&[]).unwrap_err().field_violations().len() == 9);
    }

    #[test]
    fn changes_name_each_changed_cell() {
        let mut new = DEFAULT;
        new[0][2] = Priority::High;
        let changes = changes(&DEFAULT, &new);
        assert_eq!(
            changes,
            [FieldChange::new(
                "cells[impact=HIGH,urgency=LOW].priority",
                "MODERATE",
                "HIGH"
            )]
        );
    }

    fn any_priority() -> impl Strategy<Value = Priority> {
        prop::sample::select(Priority::ALL)
    }

    proptest! {
        /// Any nine priorities, sent in any order, make a matrix that answers
        /// exactly what was sent; dropping any one cell is refused.
        #[test]
        fn any_complete_matrix_round_trips(
            priorities in prop::collection::vec(any_priority(), 9),
            order in Just((0..9).collect::<Vec<usize>>()).prop_shuffle(),
            dropped in 0..9_usize,
        ) {
            let mut wanted = DEFAULT;
            for (i, p) in priorities.iter().enumerate() {
                wanted[i / 3][i % 3] = *p;
            }
            let sent = all_cells(&wanted);
            let shuffled: Vec<_> = order.iter().map(|i| sent[*i]).collect();
            let cells = validate(&shuffled).unwrap();
            prop_assert_eq!(cells, wanted);
            for (impact, urgency, p) in super::cells(&cells) {
                prop_assert_eq!(priority(&cells, impact, urgency), p);
            }
            let mut short = shuffled.clone();
            short.remove(dropped);
            prop_assert!(validate(&short).is_err());
        }
    }
}
