//! The trainable part of DePT: `P_s` (m×d), `A` (s×r), `B` (r×d), in a [`VarStore`] of their own.

use std::path::Path;

use tch::{nn::VarStore, Device, Kind, Tensor};

use crate::atomic::{write_atomically, write_safetensors_atomically};
use crate::{CoreError, DeptConfig, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE};

/// Optimiser group of the soft prompt (learning rate α1).
pub const PROMPT_GROUP: usize = 0;
/// Optimiser group of the low-rank pair A, B (learning rate α2).
pub const PAIR_GROUP: usize = 1;

pub(crate) const PROMPT_KEY: &str = "prompt_embeddings";
pub(crate) const LORA_A_KEY: &str = "prompt_encoder.lora_embedding_A";
pub(crate) const LORA_B_KEY: &str = "prompt_encoder.lora_embedding_B";

/// DePT's parameters and the one operation on them: turning word embeddings into prompted embeddings.
pub struct DecomposedPrompt {
    config: DeptConfig,
    vs: VarStore,
    prompt: Tensor,
    /// `(A, B)`; absent for PT (`r = 0`).
    pair: Option<(Tensor, Tensor)>,
}

impl DecomposedPrompt {
    /// Fresh parameters. `prompt_rows` are the word embeddings the prompt starts from (`[m, d]`, see
    /// [`DeptConfig::text_init_ids`]); `None` draws N(0, 1). `A` ~ U(±1/√r) (kaiming-uniform, a = √5, as the
    /// official code) and `B` = 0, so the first forward pass equals the backbone's with the prompt alone.
    pub fn new(
        config: DeptConfig,
        prompt_rows: Option<&Tensor>,
        device: Device,
    ) -> Result<Self, CoreError> {
        config.validate()?;
        let (m, d, r) = (config.m, config.d, config.r);
        let prompt_init = match prompt_rows {
            Some(rows) => {
                if rows.size() != [m, d] {
                    return Err(CoreError::Shape(format!(
                        "prompt initialisation rows are {:?}, expected [m = {m}, d = {d}]",
                        rows.size()
                    )));
                }
                rows.detach().to_kind(Kind::Float).to_device(device)
            }
            None => Tensor::randn([m, d], (Kind::Float, device)),
        };
        let pair_init = (r > 0).then(|| {
            let s = config.s.unwrap_or(0);
            let bound = 1.0 / (r as f64).sqrt();
            let a = Tensor::empty([s, r], (Kind::Float, device)).uniform_(-bound, bound);
            let b = Tensor::zeros([r, d], (Kind::Float, device));
            (a, b)
        });
        Self::from_tensors(config, &prompt_init, pair_init.as_ref(), device)
    }

    /// Parameters from given values (loading, tests). Shapes are checked against `config`.
    pub fn from_tensors(
        config: DeptConfig,
        prompt: &Tensor,
        pair: Option<&(Tensor, Tensor)>,
        device: Device,
    ) -> Result<Self, CoreError> {
        config.validate()?;
        let expected = expected_shapes(&config);
        check_shape(PROMPT_KEY, prompt, &expected[0].1)?;
        let vs = VarStore::new(device);
        let root = vs.root();
        let prompt = root
            .set_group(PROMPT_GROUP)
            .var_copy(PROMPT_KEY, &prompt.to_kind(Kind::Float));
        let pair = match (config.r > 0, pair) {
            (false, None) => None,
            (true, Some((a, b))) => {
                check_shape(LORA_A_KEY, a, &expected[1].1)?;
                check_shape(LORA_B_KEY, b, &expected[2].1)?;
                let encoder = root.set_group(PAIR_GROUP) / "prompt_encoder";
                Some((
                    encoder.var_copy("lora_embedding_A", &a.to_kind(Kind::Float)),
                    encoder.var_copy("lora_embedding_B", &b.to_kind(Kind::Float)),
                ))
            }
            (false, Some(_)) => {
                return Err(CoreError::Shape(
                    "r = 0 (prompt tuning) takes no A, B pair".into(),
                ))
            }
            (true, None) => {
                return Err(CoreError::Shape(format!(
                    "r = {} needs the A, B pair",
                    config.r
                )))
            }
        };
        Ok(DecomposedPrompt {
            config,
            vs,
            prompt,
            pair,
        })
    }

    /// Casts the parameters (e.g. to `Kind::Double` for exactness checks); they are created as `Kind::Float`.
    pub fn set_kind(&mut self, kind: Kind) {
        self.vs.set_kind(kind);
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Overwrites this adapter's values with another's of the same shape (m, r, s, d): resuming from a
    /// checkpoint, or starting from a pretrained adapter (transfer, the official `--peft_model_id`).
    pub fn copy_from(&mut self, other: &DecomposedPrompt) -> Result<(), CoreError> {
        let shape = |c: &DeptConfig| (c.m, c.r, c.s.filter(|_| c.r > 0), c.d);
        if shape(&other.config) != shape(&self.config) {
            let (m, r, s, d) = shape(&other.config);
            let (m2, r2, s2, d2) = shape(&self.config);
            return Err(CoreError::Shape(format!(
                "the adapter has m = {m}, r = {r}, s = {s:?}, d = {d}; expected m = {m2}, r = {r2}, s = {s2:?}, \
                 d = {d2}"
            )));
        }
        tch::no_grad(|| {
            self.prompt.copy_(other.prompt());
            if let (Some((a, b)), Some((oa, ob))) = (&mut self.pair, other.pair()) {
                a.copy_(oa);
                b.copy_(ob);
            }
        });
        Ok(())
    }

    pub fn config(&self) -> &DeptConfig {
        &self.config
    }

    /// The store an optimiser is built over; variables are in [`PROMPT_GROUP`] and [`PAIR_GROUP`].
    pub fn var_store(&self) -> &VarStore {
        &self.vs
    }

    pub fn var_store_mut(&mut self) -> &mut VarStore {
        &mut self.vs
    }

    /// `P_s`, `[m, d]`.
    pub fn prompt(&self) -> &Tensor {
        &self.prompt
    }

    /// `(A [s, r], B [r, d])`, absent for PT.
    pub fn pair(&self) -> Option<(&Tensor, &Tensor)> {
        self.pair.as_ref().map(|(a, b)| (a, b))
    }

    /// Every trainable tensor (P, then A and B), e.g. for gradient clipping.
    pub fn parameters(&self) -> Vec<Tensor> {
        self.param_groups()
            .into_iter()
            .flat_map(|(_, p)| p)
            .collect()
    }

    /// `(group, parameters)` for the optimiser: the prompt at α1, the pair at α2.
    pub fn param_groups(&self) -> Vec<(usize, Vec<Tensor>)> {
        let mut groups = vec![(PROMPT_GROUP, vec![self.prompt.shallow_clone()])];
        if let Some((a, b)) = &self.pair {
            groups.push((PAIR_GROUP, vec![a.shallow_clone(), b.shallow_clone()]));
        }
        groups
    }

    /// [`DecomposedPrompt::apply`] for rows whose tokens do not start at column 0 (left-padded batches of a
    /// decoder-only model): row `A[p]` goes to the token at position `p` of its own sequence, `positions [b, len]`
    /// (e.g. the running count of the mask minus one), so that a row gets the same update however it is padded.
    /// Padding positions (mask 0) get no update.
    pub fn apply_at(
        &self,
        embeds: &Tensor,
        mask: &Tensor,
        positions: &Tensor,
    ) -> Result<(Tensor, Tensor), CoreError> {
        let size = embeds.size();
        let d = self.config.d;
        if size.len() != 3
            || size[2] != d
            || mask.size() != size[..2]
            || positions.size() != size[..2]
        {
            return Err(CoreError::Shape(format!(
                "input embeddings [batch, len, d = {d}] with mask and positions [batch, len] expected, got {size:?}, \
                 {:?} and {:?}",
                mask.size(),
                positions.size()
            )));
        }
        let updated = match &self.pair {
            Some((a, b)) => {
                let s = a.size()[0];
                let real = mask.ne(0);
                let farthest = positions
                    .masked_fill(&real.logical_not(), 0)
                    .max()
                    .int64_value(&[]);
                if farthest >= s {
                    return Err(CoreError::Shape(format!(
                        "a token at position {farthest} is beyond the adapter's max_length s = {s}; truncate inputs \
                         to s tokens"
                    )));
                }
                let rows = a
                    .index_select(0, &positions.clamp(0, s - 1).view([-1]))
                    .view([size[0], size[1], -1]);
                let delta =
                    rows.matmul(b) * self.config.scale() * real.unsqueeze(-1).to_kind(b.kind());
                embeds + delta.to_kind(embeds.kind())
            }
            None => embeds.shallow_clone(),
        };
        Ok(self.prepend_prompt(updated, mask))
    }

    /// `embeds [b, len, d]`, `mask [b, len]` → `([b, m+len, d], [b, m+len])`: adds `scale·(A[..len]·B)` to each
    /// position, then puts the prompt in front (mask 1 for prompt positions).
    ///
    /// Only the first `len` rows of `A` are used, so a batch padded to its longest input gives the same outputs
    /// for real tokens as the official code's padding to `s`, at less cost.
    ///
    /// ```
    /// use dept_core::{DecomposedPrompt, DeptConfig};
    /// use tch::{Device, Kind, Tensor};
    ///
    /// // m = 2 prompt tokens, rank 1, inputs of up to s = 4 tokens, width d = 3.
    /// let prompt = DecomposedPrompt::new(DeptConfig::new(2, 1, 4, 3)?, None, Device::Cpu)?;
    /// let embeds = Tensor::ones([1, 4, 3], (Kind::Float, Device::Cpu));
    /// let mask = Tensor::ones([1, 4], (Kind::Int64, Device::Cpu));
    /// let (prompted, prompted_mask) = prompt.apply(&embeds, &mask)?;
    /// assert_eq!(prompted.size(), [1, 6, 3]);
    /// assert_eq!(prompted_mask.size(), [1, 6]);
    /// // B starts at zero, so before training the input positions are the word embeddings unchanged.
    /// assert!(prompted.narrow(1, 2, 4).allclose(&embeds, 0.0, 0.0, false));
    /// # Ok::<(), dept_core::CoreError>(())
    /// ```
    pub fn apply(&self, embeds: &Tensor, mask: &Tensor) -> Result<(Tensor, Tensor), CoreError> {
        let size = embeds.size();
        let d = self.config.d;
        if size.len() != 3 || size[2] != d {
            return Err(CoreError::Shape(format!(
                "input embeddings must be [batch, len, d = {d}], got {size:?}"
            )));
        }
        let (batch, len) = (size[0], size[1]);
        if mask.size() != [batch, len] {
            return Err(CoreError::Shape(format!(
                "attention mask {:?} does not match input embeddings {size:?}",
                mask.size()
            )));
        }
        let updated = match &self.pair {
            Some((a, b)) => {
                let s = a.size()[0];
                if len > s {
                    return Err(CoreError::Shape(format!(
                        "input of {len} tokens is longer than the adapter's max_length s = {s}; truncate inputs \
                         to s tokens"
                    )));
                }
                let delta = a.narrow(0, 0, len).matmul(b) * self.config.scale();
                embeds + delta.to_kind(embeds.kind())
            }
            None => embeds.shallow_clone(),
        };
        Ok(self.prepend_prompt(updated, mask))
    }

    /// The prompt in front of `embeds [b, len, d]` and ones in front of `mask`.
    fn prepend_prompt(&self, embeds: Tensor, mask: &Tensor) -> (Tensor, Tensor) {
        let (batch, d) = (embeds.size()[0], self.config.d);
        let prompt = self
            .prompt
            .to_kind(embeds.kind())
            .unsqueeze(0)
            .expand([batch, self.config.m, d], false);
        let prompt_mask = Tensor::ones([batch, self.config.m], (mask.kind(), mask.device()));
        (
            Tensor::cat(&[prompt, embeds], 1),
            Tensor::cat(&[prompt_mask, mask.shallow_clone()], 1),
        )
    }

    /// Writes `adapter_config.json` and `adapter_model.safetensors` into `dir` (created if needed). Each file is
    /// written to a temporary name and renamed, so a crash never leaves a half-written file under the real name.
    pub fn save(&self, dir: &Path) -> Result<(), CoreError> {
        std::fs::create_dir_all(dir).map_err(|error| CoreError::Write {
            path: dir.to_path_buf(),
            error,
        })?;
        let mut config = serde_json::to_value(&self.config)
            .map_err(|e| CoreError::Config(format!("cannot serialise the adapter config: {e}")))?;
        if let Some(obj) = config.as_object_mut() {
            obj.insert("peft_type".into(), self.config.peft_type().into());
            obj.insert("inference_mode".into(), true.into());
        }
        let text = serde_json::to_string_pretty(&config)
            .map_err(|e| CoreError::Config(format!("cannot serialise the adapter config: {e}")))?;
        let mut named: Vec<(&str, Tensor)> = vec![(
            PROMPT_KEY,
            self.prompt.detach().to_device(Device::Cpu).contiguous(),
        )];
        if let Some((a, b)) = &self.pair {
            named.push((LORA_A_KEY, a.detach().to_device(Device::Cpu).contiguous()));
            named.push((LORA_B_KEY, b.detach().to_device(Device::Cpu).contiguous()));
        }
        let weights = dir.join(ADAPTER_WEIGHTS_FILE);
        write_safetensors_atomically(&weights, &named).map_err(|error| CoreError::Write {
            path: weights.clone(),
            error,
        })?;
        let config_path = dir.join(ADAPTER_CONFIG_FILE);
        write_atomically(&config_path, |tmp| std::fs::write(tmp, text.as_bytes())).map_err(
            |error| CoreError::Write {
                path: config_path.clone(),
                error,
            },
        )
    }

    /// Reads an adapter folder written by [`save`](Self::save), the official DePT code or PEFT (safetensors only).
    pub fn load(dir: &Path, device: Device) -> Result<Self, CoreError> {
        let config_path = dir.join(ADAPTER_CONFIG_FILE);
        let config = DeptConfig::load(dir)?;
        let weights = dir.join(ADAPTER_WEIGHTS_FILE);
        if !weights.is_file() {
            let message = if dir.join("adapter_model.bin").exists() {
                "only adapter_model.bin (the official code's torch.save file) is here, and pickle is never loaded \
                 as such: `dept import official DIR --out NEW_DIR` reads its tensors (with a reader that runs no \
                 code) into a dept adapter folder"
            } else {
                "file not found"
            };
            return Err(CoreError::File {
                path: weights,
                message: message.into(),
            });
        }
        let bad = |message: String| CoreError::File {
            path: weights.clone(),
            message,
        };
        let tensors = Tensor::read_safetensors(&weights)
            .map_err(|e| bad(format!("not a readable safetensors file: {e}")))?;
        Self::from_named(config, tensors, device, &config_path).map_err(bad)
    }

    /// The adapter held by a weights file's named tensors (PEFT's names), for the `config` read from
    /// `config_path`; the error says which tensor is missing, extra or of the wrong shape.
    pub(crate) fn from_named(
        config: DeptConfig,
        mut tensors: Vec<(String, Tensor)>,
        device: Device,
        config_path: &Path,
    ) -> Result<Self, String> {
        let mut take = |key: &str| -> Option<Tensor> {
            let pos = tensors.iter().position(|(name, _)| name == key)?;
            Some(tensors.swap_remove(pos).1)
        };
        let prompt = take(PROMPT_KEY).ok_or_else(|| format!("no `{PROMPT_KEY}` tensor"))?;
        let pair = if config.r > 0 {
            let a = take(LORA_A_KEY)
                .ok_or_else(|| format!("no `{LORA_A_KEY}` tensor (r = {})", config.r))?;
            let b = take(LORA_B_KEY)
                .ok_or_else(|| format!("no `{LORA_B_KEY}` tensor (r = {})", config.r))?;
            Some((a, b))
        } else {
            None
        };
        if let Some((extra, _)) = tensors.first() {
            return Err(format!(
                "unexpected tensor `{extra}`: a DePT/PT adapter holds only {PROMPT_KEY}, {LORA_A_KEY}, {LORA_B_KEY}"
            ));
        }
        Self::from_tensors(config, &prompt, pair.as_ref(), device)
            .map_err(|e| format!("does not match {}: {e}", config_path.display()))
    }

    /// Refuses an adapter built for another backbone or input length, naming both numbers.
    pub fn check_compatible(&self, d: i64, s: i64) -> Result<(), CoreError> {
        if self.config.d != d {
            return Err(CoreError::Config(format!(
                "the adapter's token_dim d = {} differs from the backbone's hidden size d = {d}",
                self.config.d
            )));
        }
        if let Some(rows) = self.config.s.filter(|_| self.config.r > 0) {
            if rows != s {
                return Err(CoreError::Config(format!(
                    "the adapter's max_length s = {rows} differs from the configured max input length s = {s}"
                )));
            }
        }
        Ok(())
    }
}

fn expected_shapes(config: &DeptConfig) -> [(&'static str, Vec<i64>); 3] {
    let s = config.s.unwrap_or(0);
    [
        (PROMPT_KEY, vec![config.m, config.d]),
        (LORA_A_KEY, vec![s, config.r]),
        (LORA_B_KEY, vec![config.r, config.d]),
    ]
}

fn check_shape(name: &str, tensor: &Tensor, expected: &[i64]) -> Result<(), CoreError> {
    if tensor.size() != expected {
        return Err(CoreError::Shape(format!(
            "`{name}` has shape {:?}, expected {expected:?} from the adapter config",
            tensor.size()
        )));
    }
    Ok(())
}
