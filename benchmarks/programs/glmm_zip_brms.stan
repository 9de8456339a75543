// Zero-inflated Poisson with a varying intercept:
// count ~ 1 + x + (1 | site), family = zero_inflated_poisson().
// Written for the benchmark in the style of brms's generated code (brms 2.2x): centered
// population-level design Xc with a temporary Intercept, non-centered group effects
// r_1_1 = sd_1[1] * z_1[1], the linear predictor built in a loop over observations, and the
// likelihood as brms writes it for this family: its zero_inflated_poisson_log_lpmf function,
// called once per observation. The priors are hbstan's defaults (so that both programs sample
// the same posterior): normal on the Intercept and on b, beta(1, 1) on zi (brms's default
// too), half-normal on the SD; brms writes their values into the program as literals, here
// they are data (same values).
functions {
  /* zero-inflated poisson log-PDF of a single response
   * log parameterization for the poisson part
   * Args:
   *   y: the response value
   *   eta: linear predictor for poisson distribution
   *   zi: zero-inflation probability
   * Returns:
   *   a scalar to be added to the log posterior
   */
  real zero_inflated_poisson_log_lpmf(int y, real eta, real zi) {
    if (y == 0) {
      return log_sum_exp(bernoulli_lpmf(1 | zi),
                         bernoulli_lpmf(0 | zi) +
                         poisson_log_lpmf(0 | eta));
    } else {
      return bernoulli_lpmf(0 | zi) +
             poisson_log_lpmf(y | eta);
    }
  }
}
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
  // prior hyperparameters (hbstan's defaults)
  real prior_Intercept_loc;
  real<lower=0> prior_Intercept_scale;
  vector<lower=0>[Kc] prior_b_scale;
  real<lower=0> prior_zi_alpha;
  real<lower=0> prior_zi_beta;
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
  real<lower=0, upper=1> zi;  // zero-inflation probability
  vector<lower=0>[M_1] sd_1;  // group-level standard deviations
  array[M_1] vector[N_1] z_1;  // standardized group-level effects
}
transformed parameters {
  vector[N_1] r_1_1;  // actual group-level effects
  real lprior = 0;  // prior contributions to the log posterior
  r_1_1 = (sd_1[1] * (z_1[1]));
  lprior += normal_lpdf(b | 0, prior_b_scale);
  lprior += normal_lpdf(Intercept | prior_Intercept_loc, prior_Intercept_scale);
  lprior += beta_lpdf(zi | prior_zi_alpha, prior_zi_beta);
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
    for (n in 1:N) {
      target += zero_inflated_poisson_log_lpmf(Y[n] | mu[n], zi);
    }
  }
  // priors including constants
  target += lprior;
  target += std_normal_lpdf(z_1[1]);
}
generated quantities {
  // actual population-level intercept
  real b_Intercept = Intercept - dot_product(means_X, b);
}
