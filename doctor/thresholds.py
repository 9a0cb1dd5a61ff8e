"""Every number the doctor judges by, named, with where it comes from.

:class:`Thresholds` is an init argument of ``callbacks.Doctor``, so a config or the command
line changes any of them: ``--trainer.callbacks+=callbacks.Doctor
--trainer.callbacks.thresholds.dead_fraction 0.7`` or, in YAML, ``init_args: {thresholds:
{dead_fraction: 0.7}}``.
"""

from dataclasses import dataclass


@dataclass
class Thresholds:
    """The doctor's thresholds (defaults in brackets, with their sources).

    Attributes:
        initial_loss_factor: [1.5] the pre-flight flags an initial loss above this multiple
            of the chance loss (ln C for C classes, ln 2 for a binary task). Karpathy, "A
            recipe for training neural networks" (2019): "verify loss @ init" is ln C; a
            loss far above it means the head or its scale is wrong.
        signal_ratio: [100] a signal that shrinks or grows by more than this factor between
            the first and the last hidden layer (forward activation std, backward gradient
            norm) vanishes or explodes. He et al. (2015) and Glorot & Bengio (2010) derive
            the init that keeps the per-layer factor at 1; two decades over the depth of a
            network is the band DeepDiagnosis (Wardat et al. 2022) allows its ratios.
        gradient_ratio: [1e-3] during training, a weight layer whose gradient norm relative
            to its weight norm is below this multiple of the largest layer's, for
            ``patience`` logged steps, has vanishing gradients (AUTOTRAINER, Zhang et al.
            2021, compares layers' gradients with each other in the same way).
        exploding_growth: [100] the total gradient norm above this multiple of its first
            logged value, for two logged steps in a row, explodes (AUTOTRAINER).
        dead_fraction: [0.5] a rectifier layer with at least this share of units that are
            zero for every sample of the logged batch has dying units (AUTOTRAINER's
            "dying ReLU"; a healthy layer loses a few percent).
        saturated_fraction: [0.5] a sigmoid/tanh layer with at least this share of outputs
            near its asymptotes is saturated (Glorot & Bengio 2010, whose margin
            ``callbacks.ActivationStatistics.saturation_margin`` sets), while the loss is
            still above ``learned_fraction`` x the chance loss: a net that has learned may
            saturate (XOR's hidden units do), one that has not cannot move on.
        learned_fraction: [0.5] see ``saturated_fraction``.
        update_ratio: [1e-3] the healthy size of one step, ‖ΔW‖/‖W‖ per weight layer
            (Karpathy, CS231n "ratio of updates to weights ... somewhere around 1e-3").
        update_factor: [100] a median update ratio over the weight layers above
            ``update_ratio`` x this is a too-high learning rate, below ``update_ratio`` /
            this a too-low one (DeepDiagnosis's band, 1e-3 x/÷ 100).
        adaptive_first_step: [1.0] the pre-flight's one step of an optimizer that divides by
            the gradient's size (Adam, RMSprop, Adagrad, ...) moves each weight by about its
            learning rate, however small the gradient: larger than the band above by design
            (RMSprop at lr 1e-3: about 20%). Only a first step larger than this (the weights'
            own size) is a too-high learning rate there; the logged steps are judged by the band.
        stall_fraction: [0.05] a too-low learning rate also leaves the training loss within
            this fraction of where it started.
        chance_margin: [0.05] a training loss that stays within this fraction of the chance
            loss for ``stall_steps`` optimizer steps is not learning (AUTOTRAINER's "slow
            convergence").
        stall_steps: [200] see ``chance_margin``. AUTOTRAINER judges whole epochs; 200 steps
            is a quarter of an epoch of the shipped MNIST configs, and several times the
            plateau a small sigmoid net sits on before it breaks away (XOR: about 40 steps).
        overfit_epochs: [3] validation loss above its best for this many epochs while the
            training loss falls is overfitting (early stopping's usual patience).
        overfit_rise: [0.1] ... and its latest value at least this fraction above its best:
            Prechelt's generalization loss GL = E_val / E_best - 1 (Prechelt 1998, "Early
            stopping - but when?"; he stops at GL above 1-5%). 10% here, because a small
            validation split wanders by a few percent between epochs: the satellite config,
            healthy at 98.7% test accuracy, ended 3.4% above its best validation loss.
        symmetry_tolerance: [1e-6] units whose incoming weights agree to this relative
            tolerance are identical (zero or constant init): nothing can tell them apart.
        edge_band: [0.3] a sharpness within this fraction of the optimizer's stability limit
            (``callbacks.Curvature``) sits at the edge of stability: gradient descent drives
            the sharpness up to 2/η and hovers there (Cohen et al. 2021, whose runs settle
            within a few percent of it; 30% leaves room for the fixed batch's noise). An
            ``info``, not a warning: it is how gradient descent normally trains.
        sharpness_overshoot: [2.0] a sharpness above this multiple of the limit for
            ``patience`` measurements overshoots: the step is unstable along the sharpest
            direction (on a quadratic, past 2/η the error grows by ηλ - 1 per step), and
            no self-stabilization brings it back (Cohen et al. see at most ~1.2x).
        batch_factor: [10] a batch this many times below (above) the measured gradient noise
            scale B_simple for ``noise_patience`` measurements gets the advice that a larger
            (smaller) batch trains in fewer steps (on fewer images) at the same quality.
            McCandlish et al. 2018 (eq. 2.11, with B_crit ~ B_simple): steps S and images E
            trade as (S/S_min - 1)(E/E_min - 1) = 1, so a batch of B_simple/10 takes about 11x
            the fewest steps for nearly the fewest images, and 10 B_simple 11x the fewest
            images; within those bounds the choice is a trade, not a mistake.
        noise_patience: [5] measurements of the noise scale a batch-size advice needs (each
            is an exponential mean already; five keep one transient from deciding).
        patience: [3] rules on logged series need this many logged steps in a row, so one
            noisy batch is no verdict (a too-high learning rate needs one: see
            ``doctor.rules.learning_rate``).
    """

    initial_loss_factor: float = 1.5
    signal_ratio: float = 100.0
    gradient_ratio: float = 1e-3
    exploding_growth: float = 100.0
    dead_fraction: float = 0.5
    saturated_fraction: float = 0.5
    learned_fraction: float = 0.5
    update_ratio: float = 1e-3
    update_factor: float = 100.0
    adaptive_first_step: float = 1.0
    stall_fraction: float = 0.05
    chance_margin: float = 0.05
    stall_steps: int = 200
    overfit_epochs: int = 3
    overfit_rise: float = 0.1
    symmetry_tolerance: float = 1e-6
    edge_band: float = 0.3
    sharpness_overshoot: float = 2.0
    batch_factor: float = 10.0
    noise_patience: int = 5
    patience: int = 3
