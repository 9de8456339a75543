// Bernoulli, three crossed varying intercepts:
// y ~ 1 + x1 + x2 + (1 | state) + (1 | age) + (1 | edu), family = bernoulli().
// Written for the benchmark in the style of brms's generated code (brms 2.2x): centered
// population-level design Xc with a temporary Intercept, non-centered group effects
// r_k_1 = sd_k[1] * z_k[1], the linear predictor built in a loop over observations, the
// likelihood as one bernoulli_logit_glm call. The priors are hbstan's defaults (so that both
// programs sample the same posterior): normal on the Intercept and on b, half-normal on the
// SDs; brms writes their values into the program as literals, here they are data (same values).
data {
  int<lower=1> N;  // total number of observations
  array[N] int Y;  // response variable
  int<lower=1> K;  // number of population-level effects
  matrix[N, K] X;  // population-level design matrix (first column: intercept)
  int<lower=1> Kc;  // number of population-level effects after centering
  // data for group-level effects of ID 1
  int<lower=1> N_1;  // number of grouping levels
  int<lower=1> M_1;  // number of coefficients per level
  array[N] int<lower=1> J_1;  // grouping indicator per observation
  // group-level predictor values
  vector[N] Z_1_1;
  // data for group-level effects of ID 2
  int<lower=1> N_2;  // number of grouping levels
  int<lower=1> M_2;  // number of coefficients per level
  array[N] int<lower=1> J_2;  // grouping indicator per observation
  // group-level predictor values
  vector[N] Z_2_1;
  // data for group-level effects of ID 3
  int<lower=1> N_3;  // number of grouping levels
  int<lower=1> M_3;  // number of coefficients per level
  array[N] int<lower=1> J_3;  // grouping indicator per observation
  // group-level predictor values
  vector[N] Z_3_1;
  // prior hyperparameters (hbstan's defaults)
  real prior_Intercept_loc;
  real<lower=0> prior_Intercept_scale;
  vector<lower=0>[Kc] prior_b_scale;
  real<lower=0> prior_sd_scale;
  int prior_only;  // should the likelihood be ignored?
}
transformed data {
  matrix[N, Kc] Xc;  // centered version of X without an intercept
  vector[Kc] means_X;  // column means of X before centering
  for (i in 2:K) {
    means_X[i - 1] = mean(X[, i]);
    Xc[, i - 1] = X[, i] - means_X[i - 1];
  }
}
parameters {
  vector[Kc] b;  // regression coefficients
  real Intercept;  // temporary intercept for centered predictors
  vector<lower=0>[M_1] sd_1;  // group-level standard deviations
  array[M_1] vector[N_1] z_1;  // standardized group-level effects
  vector<lower=0>[M_2] sd_2;  // group-level standard deviations
  array[M_2] vector[N_2] z_2;  // standardized group-level effects
  vector<lower=0>[M_3] sd_3;  // group-level standard deviations
  array[M_3] vector[N_3] z_3;  // standardized group-level effects
}
transformed parameters {
  vector[N_1] r_1_1;  // actual group-level effects
  vector[N_2] r_2_1;  // actual group-level effects
  vector[N_3] r_3_1;  // actual group-level effects
  real lprior = 0;  // prior contributions to the log posterior
  r_1_1 = (sd_1[1] * (z_1[1]));
  r_2_1 = (sd_2[1] * (z_2[1]));
  r_3_1 = (sd_3[1] * (z_3[1]));
  lprior += normal_lpdf(b | 0, prior_b_scale);
  lprior += normal_lpdf(Intercept | prior_Intercept_loc, prior_Intercept_scale);
  lprior += normal_lpdf(sd_1 | 0, prior_sd_scale)
    - 1 * normal_lccdf(0 | 0, prior_sd_scale);
  lprior += normal_lpdf(sd_2 | 0, prior_sd_scale)
    - 1 * normal_lccdf(0 | 0, prior_sd_scale);
  lprior += normal_lpdf(sd_3 | 0, prior_sd_scale)
    - 1 * normal_lccdf(0 | 0, prior_sd_scale);
}
model {
  // likelihood including constants
  if (!prior_only) {
    // initialize linear predictor term
    vector[N] mu = rep_vector(0.0, N);
    mu += Intercept;
    for (n in 1:N) {
      // add more terms to the linear predictor
      mu[n] += r_1_1[J_1[n]] * Z_1_1[n] + r_2_1[J_2[n]] * Z_2_1[n] + r_3_1[J_3[n]] * Z_3_1[n];
    }
    target += bernoulli_logit_glm_lpmf(Y | Xc, mu, b);
  }
  // priors including constants
  target += lprior;
  target += std_normal_lpdf(z_1[1]);
  target += std_normal_lpdf(z_2[1]);
  target += std_normal_lpdf(z_3[1]);
}
generated quantities {
  // actual population-level intercept
  real b_Intercept = Intercept - dot_product(means_X, b);
}
