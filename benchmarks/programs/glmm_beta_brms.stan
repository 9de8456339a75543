// Beta (logit link) with a varying intercept:
// cover ~ 1 + x + (1 | field), family = Beta().
// Written for the benchmark in the style of brms's generated code (brms 2.2x): centered
// population-level design Xc with a temporary Intercept, non-centered group effects
// r_1_1 = sd_1[1] * z_1[1], the linear predictor built in a loop over observations, then
// mu = inv_logit(mu) and one vectorized beta_lpdf(Y | mu * phi, (1 - mu) * phi). The priors
// are hbstan's defaults (so that both programs sample the same posterior): normal on the
// Intercept and on b, inv_gamma(0.4, 0.3) on the precision phi (brms's default is
// gamma(0.01, 0.01)), half-normal on the SD; brms writes their values into the program as
// literals, here they are data (same values).
data {
  int<lower=1> N;  // total number of observations
  vector[N] Y;  // response variable
  int<lower=1> K;  // number of population-level effects
  matrix[N, K] X;  // population-level design matrix (first column: intercept)
  int<lower=1> Kc;  // number of population-level effects after centering
  // data for group-level effects of ID 1
  int<lower=1> N_1;  // number of grouping levels
  int<lower=1> M_1;  // number of coefficients per level
  array[N] int<lower=1> J_1;  // grouping indicator per observation
  // group-level predictor values
  vector[N] Z_1_1;
  // prior hyperparameters (hbstan's defaults)
  real prior_Intercept_loc;
  real<lower=0> prior_Intercept_scale;
  vector<lower=0>[Kc] prior_b_scale;
  real<lower=0> prior_phi_alpha;
  real<lower=0> prior_phi_beta;
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
  real<lower=0> phi;  // precision parameter
  vector<lower=0>[M_1] sd_1;  // group-level standard deviations
  array[M_1] vector[N_1] z_1;  // standardized group-level effects
}
transformed parameters {
  vector[N_1] r_1_1;  // actual group-level effects
  real lprior = 0;  // prior contributions to the log posterior
  r_1_1 = (sd_1[1] * (z_1[1]));
  lprior += normal_lpdf(b | 0, prior_b_scale);
  lprior += normal_lpdf(Intercept | prior_Intercept_loc, prior_Intercept_scale);
  lprior += inv_gamma_lpdf(phi | prior_phi_alpha, prior_phi_beta);
  lprior += normal_lpdf(sd_1 | 0, prior_sd_scale)
    - 1 * normal_lccdf(0 | 0, prior_sd_scale);
}
model {
  // likelihood including constants
  if (!prior_only) {
    // initialize linear predictor term
    vector[N] mu = rep_vector(0.0, N);
    mu += Intercept + Xc * b;
    for (n in 1:N) {
      // add more terms to the linear predictor
      mu[n] += r_1_1[J_1[n]] * Z_1_1[n];
    }
    mu = inv_logit(mu);
    target += beta_lpdf(Y | mu * phi, (1 - mu) * phi);
  }
  // priors including constants
  target += lprior;
  target += std_normal_lpdf(z_1[1]);
}
generated quantities {
  // actual population-level intercept
  real b_Intercept = Intercept - dot_product(means_X, b);
}
