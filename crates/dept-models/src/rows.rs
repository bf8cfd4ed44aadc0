//! Iteration-level (continuous) decoding: a batch of independent rows that advance one token per step together,
//! where rows may join between two steps (once their inputs are encoded) and leave as soon as they finish.
//!
//! A backbone keeps its decoding state (encoder states, key/value caches, masks) in a [`DecodingRows`]: a list of
//! tensors whose first axis is the row. Each tensor also says which axis holds positions and on which side a
//! shorter row is padded, so that two batches join by padding each tensor to the longer one and concatenating the
//! rows, without this module knowing what a tensor means:
//!
//! - states that grow by one position per step (self-attention keys and values, their mask) are padded in
//!   **front**: every row's newest position is the last column, so one step's query sees each row's own keys at
//!   the same distances as if the row ran alone (T5's relative position bias depends only on those distances);
//! - states fixed at the start (an encoder's output and its mask) are padded at the **back**, as a right-padded
//!   batch of sources is.
//!
//! Padded positions carry zeros and a 0 in their mask, and attention gives them a weight of exactly 0, so a row's
//! tokens do not depend on the other rows of the batch ([`crate::Backbone::start_rows`] says what each backbone
//! stores).

use tch::{Kind, Tensor};

use crate::ModelError;

/// Where a shorter row's padding goes along a tensor's position axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Before the row's positions (states that grow at the end).
    Front,
    /// After them (states fixed at the start).
    Back,
}

/// One tensor of a decoding state: rows on axis 0, positions on `axis` (padded on `side`), or no position axis.
#[derive(Debug)]
pub struct Slot {
    pub tensor: Tensor,
    pub positions: Option<(i64, Side)>,
}

impl Slot {
    pub fn new(tensor: Tensor, axis: i64, side: Side) -> Self {
        Slot {
            tensor,
            positions: Some((axis, side)),
        }
    }

    /// A per-row tensor with no position axis (e.g. the next position of each row).
    pub fn per_row(tensor: Tensor) -> Self {
        Slot {
            tensor,
            positions: None,
        }
    }
}

/// The decoding state of a batch of rows (see the module's documentation). Built by
/// [`crate::Backbone::start_rows`], advanced by [`crate::Backbone::step_rows`], which alone read its slots.
#[derive(Debug)]
pub struct DecodingRows {
    /// Which backbone wrote it (a state is refused by another kind of backbone).
    pub(crate) owner: &'static str,
    pub(crate) slots: Vec<Slot>,
    /// The slots whose 0/1 values say which positions are real, for [`DecodingRows::trim`]: the mask of the
    /// front-padded states, and that of the back-padded ones.
    pub(crate) front_mask: Option<usize>,
    pub(crate) back_mask: Option<usize>,
}

impl DecodingRows {
    pub(crate) fn new(
        owner: &'static str,
        slots: Vec<Slot>,
        front_mask: Option<usize>,
        back_mask: Option<usize>,
    ) -> Self {
        DecodingRows {
            owner,
            slots,
            front_mask,
            back_mask,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> i64 {
        self.slots.first().map_or(0, |s| s.tensor.size()[0])
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The state's slot `i` (for the backbone that wrote it).
    pub(crate) fn slot(&self, i: usize) -> &Tensor {
        &self.slots[i].tensor
    }

    pub(crate) fn set_slot(&mut self, i: usize, tensor: Tensor) {
        self.slots[i].tensor = tensor;
    }

    /// Refuses a state another kind of backbone wrote.
    pub(crate) fn check_owner(&self, owner: &'static str) -> Result<(), ModelError> {
        if self.owner == owner && !self.slots.is_empty() {
            Ok(())
        } else {
            Err(ModelError::Input(format!(
                "these decoding rows were started by a {} backbone, not this {owner}",
                self.owner
            )))
        }
    }

    /// `self`'s rows, then `other`'s: each tensor padded along its position axis to the longer of the two.
    pub fn join(self, other: DecodingRows) -> Result<DecodingRows, ModelError> {
        if self.is_empty() {
            return Ok(other);
        }
        if other.is_empty() {
            return Ok(self);
        }
        if self.owner != other.owner || self.slots.len() != other.slots.len() {
            return Err(ModelError::Input(format!(
                "cannot join decoding rows of a {} backbone ({} tensors) with those of a {} backbone ({})",
                self.owner,
                self.slots.len(),
                other.owner,
                other.slots.len()
            )));
        }
        let slots = self
            .slots
            .into_iter()
            .zip(other.slots)
            .map(|(a, b)| {
                let tensor = match a.positions {
                    Some((axis, side)) => {
                        let width =
                            a.tensor.size()[axis as usize].max(b.tensor.size()[axis as usize]);
                        Tensor::cat(
                            &[
                                pad_to(&a.tensor, axis, side, width),
                                pad_to(&b.tensor, axis, side, width),
                            ],
                            0,
                        )
                    }
                    None => Tensor::cat(&[a.tensor, b.tensor], 0),
                };
                Slot {
                    tensor,
                    positions: a.positions,
                }
            })
            .collect();
        Ok(DecodingRows { slots, ..self })
    }

    /// Keeps the rows at `rows` (in that order), dropping the others, then drops positions no row has any more.
    pub fn retain(&mut self, rows: &[i64]) {
        if rows.len() as i64 == self.len() && rows.iter().enumerate().all(|(i, &r)| r == i as i64) {
            return;
        }
        let device = self.slots.first().map(|s| s.tensor.device());
        let Some(device) = device else { return };
        let index = Tensor::from_slice(rows).to_device(device);
        for slot in &mut self.slots {
            slot.tensor = slot.tensor.index_select(0, &index);
        }
        self.trim();
    }

    /// Drops leading positions of the front-padded states and trailing ones of the back-padded states that no
    /// row attends to (left over from rows that left), so that the cost of a step follows the rows still running.
    fn trim(&mut self) {
        if self.is_empty() {
            return;
        }
        for (mask, side) in [(self.front_mask, Side::Front), (self.back_mask, Side::Back)] {
            let Some(mask) = mask else { continue };
            let (axis, _) = self.slots[mask].positions.unwrap_or((1, side));
            let used = self.slots[mask]
                .tensor
                .ne(0)
                .any_dim(0, false)
                .to_kind(Kind::Int64);
            let width = used.size()[0];
            let Ok(used) = Vec::<i64>::try_from(used) else {
                continue;
            };
            let (start, end) = match side {
                Side::Front => (used.iter().position(|&u| u != 0).unwrap_or(0) as i64, width),
                Side::Back => (
                    0,
                    used.iter()
                        .rposition(|&u| u != 0)
                        .map_or(width, |i| i as i64 + 1),
                ),
            };
            if end - start == width {
                continue;
            }
            debug_assert_eq!(axis, self.slots[mask].positions.map_or(axis, |p| p.0));
            for slot in &mut self.slots {
                if let Some((axis, s)) = slot.positions {
                    if s == side {
                        slot.tensor = slot.tensor.narrow(axis, start, end - start);
                    }
                }
            }
        }
    }
}

/// `tensor` padded with zeros along `axis` on `side` to `width` positions.
fn pad_to(tensor: &Tensor, axis: i64, side: Side, width: i64) -> Tensor {
    let size = tensor.size();
    let have = size[axis as usize];
    if have >= width {
        return tensor.shallow_clone();
    }
    let mut pad_size = size.clone();
    pad_size[axis as usize] = width - have;
    let zeros = Tensor::zeros(pad_size.as_slice(), (tensor.kind(), tensor.device()));
    match side {
        Side::Front => Tensor::cat(&[&zeros, tensor], axis),
        Side::Back => Tensor::cat(&[tensor, &zeros], axis),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn ids(t: &Tensor) -> Vec<i64> {
        Vec::<i64>::try_from(t.reshape([-1])).unwrap()
    }

    fn state(front: &[&[i64]], back: &[&[i64]]) -> DecodingRows {
        let row = |rows: &[&[i64]]| {
            let width = rows.iter().map(|r| r.len()).max().unwrap_or(0) as i64;
            let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
            Tensor::from_slice(&flat).view([rows.len() as i64, width])
        };
        DecodingRows::new(
            "test",
            vec![
                Slot::new(row(front), 1, Side::Front),
                Slot::new(row(back), 1, Side::Back),
                Slot::per_row(Tensor::arange(
                    front.len() as i64,
                    (Kind::Int64, Device::Cpu),
                )),
            ],
            Some(0),
            Some(1),
        )
    }

    #[test]
    fn rows_join_padded_on_each_slots_side_and_leave_trimmed() {
        let a = state(&[&[1, 1]], &[&[1, 1, 1]]);
        let b = state(&[&[1, 1, 1], &[0, 1, 1]], &[&[1, 0], &[1, 1]]);
        let mut joined = a.join(b).unwrap();
        assert_eq!(joined.len(), 3);
        assert_eq!(ids(joined.slot(0)), [0, 1, 1, 1, 1, 1, 0, 1, 1]);
        assert_eq!(ids(joined.slot(1)), [1, 1, 1, 1, 0, 0, 1, 1, 0]);
        assert_eq!(ids(joined.slot(2)), [0, 0, 1]);
        // Rows leave (in a new order): positions nobody attends to any more are dropped, on each side.
        joined.retain(&[2, 1]);
        assert_eq!(ids(joined.slot(0)), [0, 1, 1, 1, 1, 1]);
        assert_eq!(ids(joined.slot(1)), [1, 1, 1, 0]);
        assert_eq!(ids(joined.slot(2)), [1, 0]);
        joined.retain(&[0]);
        assert_eq!(ids(joined.slot(0)), [1, 1]);
        assert_eq!(ids(joined.slot(1)), [1, 1]);
        assert_eq!(ids(joined.slot(2)), [1]);
        let other = DecodingRows::new(
            "other",
            vec![Slot::per_row(Tensor::zeros(
                [1],
                (Kind::Int64, Device::Cpu),
            ))],
            None,
            None,
        );
        assert!(joined.join(other).is_err());
    }
}
