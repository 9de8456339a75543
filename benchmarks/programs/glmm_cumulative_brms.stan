// Ordinal (cumulative logit) with a varying intercept:
// rating ~ 1 + x + (1 | rater), family = cumulative("logit").
// Written for the benchmark in the style of brms's generated code (brms 2.2x): centered
// population-level design Xc, ordered thresholds Intercept for the centered predictors (no
// separate intercept), non-centered group effects r_1_1 = sd_1[1] * z_1[1], the linear
// predictor built in a loop over observations, and the likelihood as brms writes it for the
// logit link without a discrimination parameter: ordered_logistic_lpmf once per observation.
// The priors are hbstan's defaults (so that both programs sample the same posterior; for the
// thresholds also brms's): student_t(3, 0, 2.5) on each threshold, normal on b, half-normal
// on the SD; brms writes their values into the program as literals, here they are data (same
// values).
data {
  int<lower=1> N;  // total number of observations
  array[N] int Y;  // response variable
  int<lower=2> nthres;  // number of thresholds
  int<lower=1> K;  // number of population-level effects
  matrix[N, K] X;  // population-level design matrix (no intercept column)
  // data for group-level effects of ID 1
  int<lower=1> N_1;  // number of grouping levels
  int<lower=1> M_1;  // number of coefficients per level
  array[N] int<lower=1> J_1;  // grouping indicator per observation
  // group-level predictor values
  vector[N] Z_1_1;
  // prior hyperparameters (hbstan's defaults)
  real<lower=0> prior_Intercept_nu;
  real prior_Intercept_loc;
  real<lower=0> prior_Intercept_scale;
  vector<lower=0>[K] prior_b_scale;
  real<lower=0> prior_sd_scale;
  int prior_only;  // should the likelihood be ignored?
}
transformed data {
  int Kc = K;
  matrix[N, Kc] Xc;  // centered version of X
  vector[Kc] means_X;  // column means of X before centering
  for (i in 1:K) {
    means_X[i] = mean(X[, i]);
    Xc[, i] = X[, i] - means_X[i];
  }
}
parameters {
  vector[Kc] b;  // regression coefficients
  ordered[nthres] Intercept;  // temporary thresholds for centered predictors
  vector<lower=0>[M_1] sd_1;  // group-level standard deviations
  array[M_1] vector[N_1] z_1;  // standardized group-level effects
}
transformed parameters {
  real disc = 1;  // discrimination parameters
  vector[N_1] r_1_1;  // actual group-level effects
  real lprior = 0;  // prior contributions to the log posterior
  r_1_1 = (sd_1[1] * (z_1[1]));
  lprior += normal_lpdf(b | 0, prior_b_scale);
  lprior += student_t_lpdf(Intercept | prior_Intercept_nu, prior_Intercept_loc, prior_Intercept_scale);
  lprior += normal_lpdf(sd_1 | 0, prior_sd_scale)
    - 1 * normal_lccdf(0 | 0, prior_sd_scale);
}
model {
  // likelihood including constants
  if (!prior_only) {
    // initialize linear predictor term
    vector[N] mu = rep_vector(0.0, N);
    mu += Xc * b;
    for (n in 1:N) {
      // add more terms to the linear predictor
      mu[n] += r_1_1[J_1[n]] * Z_1_1[n];
    }
    for (n in 1:N) {
      target += ordered_logistic_lpmf(Y[n] | mu[n], Intercept);
    }
  }
  // priors including constants
  target += lprior;
  target += std_normal_lpdf(z_1[1]);
}
generated quantities {
  // compute actual thresholds
  vector[nthres] b_Intercept = Intercept + dot_product(means_X, b);
}
